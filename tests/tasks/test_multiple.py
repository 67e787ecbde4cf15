"""MultiPL-E tasks: loading, MultiPL-E's program convention, and the proof that every problem's
tests run and reject a wrong body."""

from __future__ import annotations

import dataclasses
import json

import pytest

from slmbench.data import DataSource
from slmbench.errors import UserError
from slmbench.tasks import TASKS, create_task
from slmbench.tasks.multiple import LANGS, java_wrong_body
from slmbench.types import Completion, Verdict

COUNTS = {"php": 161, "rb": 161, "cpp": 161, "java": 158, "js": 161, "ts": 159, "sh": 158}


@pytest.fixture(scope="module")
def tasks(data_dir):
    return {lang: create_task(f"multiple-{lang}", source=DataSource(data_dir=data_dir)) for lang in LANGS}


def test_every_language_loads_with_multiple_stop_tokens(tasks):
    assert set(COUNTS) == set(LANGS)
    for lang, task in tasks.items():
        problems = task.problems()
        assert len(problems) == COUNTS[lang], lang
        assert f"multiple-{lang}" in TASKS
        # the class's stops are MultiPL-E's own, as every row of the data gives them
        assert {p.meta["stop_tokens"] for p in problems} == {task.stop_sequences}, lang
        assert all(p.problem_id.startswith("HumanEval_") and p.tests for p in problems)
    assert tasks["php"].problem("HumanEval_53_add").entry_point == "add"


def test_missing_data_and_unknown_language_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="multipl-e/humaneval-rb.jsonl"):
        create_task("multiple-rb", source=DataSource(data_dir=tmp_path)).problems()
    from slmbench.tasks.multiple import MultiPLE

    with pytest.raises(UserError, match="no language"):
        MultiPLE("cobol")


def test_program_is_prompt_completion_tests_as_multiple_runs_it(tasks, generations_dir):
    """The program we run is the publisher's executed program plus our trailer (C++'s extra
    headers and PHP's closing ``?>`` aside, which change nothing)."""
    base = generations_dir / "qwen2.5-coder" / "7b-base" / "multipl-e"
    for lang in ("java", "js", "ts", "sh"):
        task = tasks[lang]
        details = json.loads((base / f"humaneval-{lang}-details.json").read_text())
        row = json.loads((base / f"pred_{lang}_output.jsonl").read_text().splitlines()[0])
        problem = task.problem(row["task_id"])
        solution = task.postprocess(problem, Completion(problem.problem_id, 0, row["generation"]), "program")
        (req,) = task.programs(problem, solution).values()
        from slmbench.execution.languages import LANGUAGES

        trailer = LANGUAGES.get(task.exec_language)().trailer()
        assert req.program == details[row["task_id"]][0][1]["code"] + "\n" + trailer, lang


def test_continuations_stop_at_the_tokens(tasks):
    task = tasks["js"]
    p = task.problem("HumanEval_53_add")
    text = "  return x + y;\n}\n\nfunction other() {}\n"
    assert task.postprocess(p, Completion(p.problem_id, 0, text), "continuation") == p.prompt + "  return x + y;\n}\n"


def test_java_wrong_body_matches_the_return_type():
    assert java_wrong_body("    public static long add(long x, long y) {\n") == "        return -123456789;\n"
    assert java_wrong_body("    public static boolean f(String s) {\n") == "        return false;\n"
    assert java_wrong_body("    public static String f(String s) {\n") == '        return "__slmbench_wrong__";\n'
    assert java_wrong_body("    public static ArrayList<Long> f(long n) {\n") == "        return null;\n"


@pytest.fixture(scope="module")
def executor():
    from slmbench.execution.pool import Executor

    with Executor(workers=0) as ex:
        yield ex


@pytest.mark.toolchain
def test_cpp_compare_one_is_a_data_defect(tasks, executor):
    """Evidence for the known exception: the union in HumanEval_137's prompt declares a member of
    type `std::nullopt` (a constant), so even a correct body does not compile."""
    task = tasks["cpp"]
    p = task.problem("HumanEval_137_compare_one")
    assert "std::nullopt f3;" in p.prompt
    assert set(task.known_exceptions) == {"HumanEval_137_compare_one"}
    (req,) = task.programs(p, p.prompt + "    return a;\n").values()
    (res,) = executor.run([dataclasses.replace(req, key="compare_one")])
    assert res.verdict is Verdict.COMPILE_ERROR
    assert "nullopt" in res.message


@pytest.mark.toolchain
def test_php_strlen_is_a_data_defect(tasks, executor):
    """Evidence for the known exception: HumanEval_23_strlen redeclares a PHP built-in, so even a
    correct body stops before the tests."""
    task = tasks["php"]
    p = task.problem("HumanEval_23_strlen")
    assert "function strlen(" in p.prompt
    assert set(task.known_exceptions) == {"HumanEval_23_strlen"}
    (req,) = task.programs(p, p.prompt + "    return mb_strlen($string);\n}\n").values()
    (res,) = executor.run([dataclasses.replace(req, key="strlen")])
    assert res.verdict is Verdict.ERROR
    assert "Cannot redeclare strlen()" in res.message


def _wrong_body_failures(task, executor, limit=None):
    from slmbench.selftest import selftest_task

    result = selftest_task(task, executor, limit=limit)
    verdicts = {c.problem_id: c.result for c in result.cases}
    return result, verdicts


@pytest.mark.toolchain
@pytest.mark.parametrize("lang", sorted(LANGS))
def test_wrong_body_fails_first_problems(tasks, executor, lang):
    result, verdicts = _wrong_body_failures(tasks[lang], executor, limit=5)
    assert result.ok
    assert len(verdicts) == 5
    # the tests ran: a failed check, not a crash of the program
    ran = [pid for pid, r in verdicts.items() if r.verdict in (Verdict.FAILED, Verdict.ERROR)]
    assert len(ran) == 5, {pid: (str(r.verdict), r.message) for pid, r in verdicts.items()}


@pytest.mark.toolchain
@pytest.mark.slow
@pytest.mark.parametrize("lang", sorted(LANGS))
def test_wrong_body_fails_every_problem(tasks, executor, lang):
    result, verdicts = _wrong_body_failures(tasks[lang], executor)
    assert result.ok, [(c.problem_id, str(c.result.verdict), c.result.message) for c in result.unexpected]
    assert len(verdicts) == COUNTS[lang]
    not_run = {
        pid: r.message
        for pid, r in verdicts.items()
        if r.verdict not in (Verdict.FAILED, Verdict.ERROR) and pid not in tasks[lang].known_exceptions
    }
    assert not not_run  # no compile error, no timeout: the tests themselves rejected the body
