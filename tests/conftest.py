"""Shared fixtures. Benchmark data comes from ../shared/data (or SLMBENCH_DATA)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    env = os.environ.get("SLMBENCH_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The benchmark data folder. Tests that need it fail (not skip) when it is missing."""
    path = _shared_data()
    if not (path / "MANIFEST.md").is_file():
        pytest.fail(
            f"benchmark data not found at {path}: set SLMBENCH_DATA to the folder holding "
            "MANIFEST.md (the shared/data folder beside the repository)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def generations_dir(data_dir: Path) -> Path:
    return data_dir / "generations"
