"""Malformed samples files and dataset rows thrown at the real loaders: each is accepted or a
one-line UserError naming the file; never a traceback, never a row in the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slmbench import pipeline
from slmbench.data import DataSource
from slmbench.errors import UserError
from slmbench.samples import read_samples
from slmbench.spec import RunSpec
from slmbench.store import Store
from slmbench.tasks import create_task

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
)
ids = st.sampled_from(["HumanEval/0", "HumanEval/1", "HumanEval/163", "HumanEval/999", "Mbpp/2", "", 0, None])
sample_rows = st.fixed_dictionaries(
    {},
    optional={
        "task_id": ids | values,
        "completion": st.text(max_size=30) | values,
        "solution": values,
        "generation": values,
    },
)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _one_line(exc: UserError, path: Path) -> None:
    text = str(exc)
    assert "\n" not in text and str(path.name) in text


@pytest.fixture(scope="module")
def humaneval():
    task = create_task("humaneval", source=DataSource())
    task.problems()
    return task


@FUZZ
@given(rows=st.lists(sample_rows | values, min_size=0, max_size=4), as_list=st.booleans())
def test_samples_files(tmp_path: Path, humaneval, rows: list, as_list: bool) -> None:
    path = tmp_path / "samples.jsonl"
    path.write_text(json.dumps(rows) if as_list else "".join(json.dumps(r) + "\n" for r in rows))
    try:
        sf = read_samples(path, humaneval)
    except UserError as exc:
        _one_line(exc, path)
        return
    assert all(humaneval.problem(pid) is not None for pid in sf.samples)


@FUZZ
@given(rows=st.lists(sample_rows, min_size=1, max_size=3))
def test_a_bad_samples_file_leaves_the_store_unchanged(tmp_path: Path, humaneval, rows: list) -> None:
    path = tmp_path / "samples.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = RunSpec(model="replay", task="humaneval", samples=path, n=1, limit=2, bootstrap=0)
    with Store(tmp_path / "s.db") as store:
        try:
            read_samples(path, humaneval).check_n(["HumanEval/0", "HumanEval/1"], 1)
        except UserError:
            with pytest.raises(UserError):
                pipeline.run(spec, store, task=humaneval, executor=object())
            assert store.runs() == []


mbpp_rows = st.fixed_dictionaries(
    {},
    optional={
        "task_id": st.integers(0, 1000) | values,
        "text": st.text(max_size=20) | values,
        "code": st.text(max_size=20) | values,
        "test_list": st.lists(st.text(max_size=20), max_size=3) | values,
        "test_setup_code": values,
        "challenge_test_list": values,
    },
)


@FUZZ
@given(rows=st.lists(mbpp_rows | values, min_size=0, max_size=4), variant=st.sampled_from(["mbpp-full", "mbpp"]))
def test_dataset_rows(tmp_path: Path, rows: list, variant: str) -> None:
    folder = tmp_path / "data" / "mbpp"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mbpp.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = create_task(variant, source=DataSource(tmp_path / "data"))
    try:
        problems = task.problems()
    except UserError as exc:
        _one_line(exc, path)
        return
    for p in problems:
        assert isinstance(p.prompt, str) and isinstance(p.tests, str)
