"""MBPP (test split, full, sanitized): loading, BigCode prompt/stop conventions, test programs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slmbench.data import DataSource, sha256_file
from slmbench.errors import UserError
from slmbench.tasks import TASKS, create_task
from slmbench.tasks import mbpp as mbpp_module
from slmbench.tasks.mbpp import MBPP, wrong_solution
from slmbench.types import Completion

# bigcode-evaluation-harness bigcode_eval/tasks/mbpp.py
HARNESS_STOP_WORDS = ["\nclass", "\nassert", '\n"""', "\nprint", "\nif", "\n<|/", "\n```"]


def full_rows(data_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (data_dir / "mbpp" / "mbpp.jsonl").read_text().splitlines() if line]


@pytest.mark.parametrize(
    ("name", "count", "first", "last"), [("mbpp", 500, "11", "510"), ("mbpp-full", 974, "1", "974")]
)
def test_splits_and_checksum(data_dir: Path, name: str, count: int, first: str, last: str) -> None:
    t = create_task(name, source=DataSource(data_dir=data_dir))
    assert isinstance(t, MBPP) and TASKS.get(name) is MBPP and t.name == name
    problems = t.problems()
    assert len(problems) == count and problems[0].problem_id == first and problems[-1].problem_id == last
    assert t.dataset_checksum() == sha256_file(data_dir / "mbpp" / "mbpp.jsonl")
    assert all(p.task == name for p in problems)


def test_sanitized_has_427_tasks_with_their_prompt_field_and_test_imports(data_dir: Path) -> None:
    t = create_task("mbpp-sanitized", source=DataSource(data_dir=data_dir))
    problems = t.problems()
    assert len(problems) == 427
    raw = json.loads((data_dir / "mbpp" / "sanitized-mbpp.json").read_text())
    assert [p.problem_id for p in problems] == [str(r["task_id"]) for r in raw]
    with_imports = next(r for r in raw if r["test_imports"])
    p = t.problem(str(with_imports["task_id"]))
    assert p.prompt == '"""\n' + with_imports["prompt"] + "\n" + with_imports["test_list"][0] + '\n"""\n'
    program = t.program(p, p.prompt + p.reference, t.limits(p)).program
    assert with_imports["test_imports"][0] in program
    assert program.index(with_imports["test_imports"][0]) < program.index(with_imports["test_list"][0], len(p.prompt))


def test_prompt_stops_and_program_follow_the_harness(data_dir: Path) -> None:
    t = MBPP(DataSource(data_dir=data_dir), variant="full")
    row = next(r for r in full_rows(data_dir) if r["test_setup_code"])
    p = t.problem(str(row["task_id"]))
    assert t.prompt(p) == '"""\n' + row["text"] + "\n" + row["test_list"][0] + '\n"""\n'
    assert list(t.stop_sequences) == HARNESS_STOP_WORDS
    solution = t.postprocess(p, Completion(p.problem_id, 0, "def f():\n    return 1"), "continuation")
    assert solution == p.prompt + "def f():\n    return 1"
    program = t.program(p, solution, t.limits(p)).program
    # solution, then the setup code (the harness drops it), then the three asserts
    assert program.index(solution) < program.index(row["test_setup_code"]) < program.index(row["test_list"][2])
    assert "\r\n" not in p.reference  # the dataset's CRLF line ends are normalised
    with pytest.raises(UserError, match="few-shot"):  # the prompt split has 10 examples
        t.prompt(p, shots=11)


def test_wrong_solution_keeps_the_names_but_returns_none() -> None:
    code = "import math\ndef area(r):\n    return math.pi * r * r\n"
    wrong = wrong_solution(code)
    ns: dict = {}
    exec(wrong, ns)
    assert ns["area"](2) is None


def test_malformed_rows_name_file_and_line(tmp_path: Path, data_dir: Path) -> None:
    rows = full_rows(data_dir)[:3]
    del rows[2]["test_list"]
    (tmp_path / "mbpp").mkdir()
    path = tmp_path / "mbpp" / "mbpp.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(UserError, match=rf"{path}:3: missing field test_list"):
        MBPP(DataSource(data_dir=tmp_path), variant="full").problems()


def test_hub_is_used_only_when_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    with pytest.raises(UserError, match="MBPP data not found"):
        MBPP(DataSource(data_dir=tmp_path), variant="test").problems()
    calls = []
    rows = [r for r in full_rows(data_dir) if 11 <= r["task_id"] <= 13]

    def fake_hub(path, *, name=None, split, source):
        calls.append((path, name, split))
        return list(reversed(rows)) if split == "test" else []

    monkeypatch.setattr(mbpp_module, "load_hub_dataset", fake_hub)
    t = MBPP(DataSource(data_dir=tmp_path, allow_download=True), variant="test")
    assert [p.problem_id for p in t.problems()] == ["11", "12", "13"]
    assert calls == [("google-research-datasets/mbpp", "full", "test")]
    assert t.source_description.startswith("hub:")


@pytest.mark.slow
@pytest.mark.parametrize(("name", "count"), [("mbpp-full", 974), ("mbpp-sanitized", 427)])
def test_every_reference_passes_and_every_wrong_solution_fails(data_dir: Path, name: str, count: int) -> None:
    from slmbench.execution.pool import Executor
    from slmbench.selftest import selftest_task

    t = create_task(name, source=DataSource(data_dir=data_dir))
    with Executor(workers=0) as ex:
        report = selftest_task(t, ex)
    assert report.counts() == {"canonical": (count, count), "wrong": (count, count)}
    assert report.ok


def test_few_shot_prompts_use_the_prompt_split(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``shots=k`` (the study's few-shot ablation, docs/studies.md) was refused by every task."""
    task = create_task("mbpp", source=DataSource(data_dir=data_dir))
    p = task.problem("11")
    assert task.prompt(p, 0) == p.prompt
    rows = {r["task_id"]: r for r in full_rows(data_dir)}
    three = task.prompt(p, 3)
    # the paper's 3-shot examples (tasks 2, 3, 4) in the zero-shot form, then the problem itself
    for earlier, later in ((2, 3), (3, 4)):
        assert three.index(rows[earlier]["text"]) < three.index(rows[later]["text"])
    for number in (2, 3, 4):
        assert rows[number]["code"].replace("\r\n", "\n").strip("\n") in three
    assert rows[1]["text"] not in three and three.endswith("\n\n" + p.prompt)
    assert task.prompt(p, 10).count('"""\n') == 2 * 11
    with pytest.raises(UserError, match=r"has 10 few-shot examples .* not 11"):
        task.prompt(p, 11)
    # a prompt-split task is never its own example
    full = create_task("mbpp-full", source=DataSource(data_dir=data_dir))
    two = full.problem("2")
    assert full.prompt(two, 3).count(rows[2]["text"]) == 1 and rows[1]["text"] in full.prompt(two, 3)
    # from the hub, the test split has no prompt-split rows: they are read when first needed
    calls = []

    def fake_hub(path, *, name=None, split, source):
        calls.append(split)
        wanted = range(11, 13) if split == "test" else range(1, 11)
        return [r for n, r in rows.items() if n in wanted]

    monkeypatch.setattr(mbpp_module, "load_hub_dataset", fake_hub)
    hub = MBPP(DataSource(allow_download=True), variant="test")
    assert hub.prompt(hub.problem("11"), 0) == p.prompt and calls == ["test"]
    assert hub.prompt(hub.problem("11"), 3) == three and calls == ["test", "prompt"]
