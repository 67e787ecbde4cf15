"""Where benchmark data comes from, and reading it with errors that name file and line.

Tasks load from (in order of preference) an explicit data directory (``--data-dir`` or
``SLMBENCH_DATA``), a PyPI package that ships the data, or the Hugging Face hub when the user
allowed downloads. Nothing here touches the network unless ``allow_download`` is set.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slmbench.errors import UserError, at

DATA_ENV = "SLMBENCH_DATA"
CACHE_ENV = "SLMBENCH_CACHE"


def cache_root() -> Path:
    """Where derived data is cached (build artefacts, EvalPlus ground truth, Mercury timings):
    ``$SLMBENCH_CACHE``, else ``$XDG_CACHE_HOME/slmbench``, else ``~/.cache/slmbench``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "slmbench"


@dataclass(frozen=True)
class DataSource:
    """How a task may find its data."""

    data_dir: Path | None = None
    allow_download: bool = False

    def __post_init__(self) -> None:
        # DataSource(data_dir="/data") from Python: a str would fail later, deep in find()
        if self.data_dir is not None and not isinstance(self.data_dir, Path):
            object.__setattr__(self, "data_dir", Path(self.data_dir))

    @classmethod
    def from_options(cls, data_dir: Path | str | None = None, allow_download: bool = False) -> DataSource:
        chosen = data_dir if data_dir is not None else os.environ.get(DATA_ENV) or None
        path = Path(chosen).expanduser() if chosen is not None else None
        if path is not None and not path.is_dir():
            origin = "--data-dir" if data_dir is not None else DATA_ENV
            raise UserError(
                f"data directory {path} ({origin}) does not exist or is not a directory",
                hint="point --data-dir or SLMBENCH_DATA at a folder holding the benchmark files",
            )
        return cls(data_dir=path, allow_download=allow_download)

    def find(self, *relative: str) -> Path | None:
        """The first of ``relative`` paths that exists under the data directory, if any."""
        if self.data_dir is None:
            return None
        for rel in relative:
            candidate = self.data_dir / rel
            if candidate.is_file():
                return candidate
        return None

    def require(self, *relative: str, what: str) -> Path:
        found = self.find(*relative)
        if found is None:
            where = self.data_dir if self.data_dir is not None else f"(no data directory: set --data-dir or {DATA_ENV})"
            raise UserError(
                f"{what}: none of {', '.join(relative)} found in {where}",
                hint="download the files listed in docs/data.md into the data directory, or pass --allow-download",
            )
        return found


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_rows(rows: list[dict[str, Any]]) -> str:
    """Checksum of loaded rows, for sources that are not one file (hub datasets)."""
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps(row, sort_keys=True, default=str).encode())
        h.update(b"\n")
    return h.hexdigest()


GZIP_MAGIC = b"\x1f\x8b"
# What reading a text file can raise besides JSON errors: bad UTF-8, a truncated or corrupt gzip
# (zlib.error is not an OSError), an unreadable file.
READ_ERRORS: tuple[type[Exception], ...] = (UnicodeDecodeError, EOFError, OSError, zlib.error)


def open_text(path: Path) -> io.TextIOBase:
    """Open a UTF-8 text file, transparently decompressing gzip (by suffix or by its magic bytes,
    since samples files are often gzipped without renaming) and dropping a leading byte-order
    mark (Windows editors write one; json rejects it)."""
    try:
        with open(path, "rb") as f:
            gzipped = path.suffix == ".gz" or f.read(2) == GZIP_MAGIC
        if gzipped:
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig")
        return open(path, encoding="utf-8-sig")
    except OSError as exc:
        raise UserError(
            f"cannot read {path}: {exc.strerror or exc}", hint="check the path and its permissions"
        ) from None


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; malformed lines are a UserError."""
    with open_text(path) as f:
        try:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise UserError(
                        f"{at(path, lineno)}: not valid JSON ({exc.msg} at column {exc.colno})",
                        hint="each line must be one JSON object",
                    ) from None
                if not isinstance(obj, dict):
                    raise UserError(f"{at(path, lineno)}: expected a JSON object, found {type(obj).__name__}")
                yield lineno, obj
        except READ_ERRORS as exc:
            raise UserError(f"{path}: cannot be read as UTF-8 JSON lines ({exc})") from None


def read_json(path: Path) -> Any:
    with open_text(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as exc:
            raise UserError(f"{at(path, exc.lineno)}: not valid JSON ({exc.msg})") from None
        except READ_ERRORS as exc:
            raise UserError(f"{path}: cannot be read as UTF-8 JSON ({exc})") from None


def require_fields(obj: dict[str, Any], fields: tuple[str, ...], path: Path, lineno: int | None) -> None:
    missing = [f for f in fields if f not in obj]
    if missing:
        raise UserError(
            f"{at(path, lineno)}: missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
            hint=f"each row needs {', '.join(fields)}",
        )


def load_hub_dataset(path: str, *, name: str | None = None, split: str, source: DataSource) -> list[dict[str, Any]]:
    """Load a Hugging Face hub dataset split as rows (only when downloads are allowed)."""
    if not source.allow_download:
        raise UserError(
            f"hub dataset {path}{'/' + name if name else ''} needs the network",
            hint="pass --allow-download, or --data-dir with a local copy",
        )
    try:
        import datasets  # noqa: PLC0415 - optional, heavy
    except ImportError:
        raise UserError(
            "loading from the hub needs the `datasets` package", hint="pip install 'slmbench[hf]'"
        ) from None
    try:
        ds = datasets.load_dataset(path, name, split=split)
    except Exception as exc:  # the hub raises many types; all mean "could not load"
        raise UserError(f"could not load hub dataset {path} ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    return [dict(row) for row in ds]
