"""HumanEvalPack synthesis tasks: loading, prompts and stops, program assembly, and the proof
that canonical solutions pass and buggy ones fail in every language."""

from __future__ import annotations

import pytest

from slmbench.data import DataSource
from slmbench.errors import UserError
from slmbench.execution.languages import LANGUAGES
from slmbench.tasks import TASKS, create_task
from slmbench.tasks.humanevalpack import HumanEvalPack, go_program
from slmbench.types import Completion

LANGS = ("python", "js", "java", "go", "cpp", "rust")


@pytest.fixture(scope="module")
def tasks(data_dir):
    return {lang: create_task(f"humanevalpack-{lang}", source=DataSource(data_dir=data_dir)) for lang in LANGS}


def test_every_language_loads_164_problems_with_canonical_and_buggy_solutions(tasks):
    for lang, task in tasks.items():
        problems = task.problems()
        assert len(problems) == 164, lang
        assert task.name == f"humanevalpack-{lang}"
        assert {p.language for p in problems} == {task.exec_language}
        assert task.exec_language in LANGUAGES
        assert all(p.reference and p.tests and p.meta.get("buggy_solution") for p in problems)
        assert len(task.dataset_checksum()) == 64
    assert tasks["go"].problem("Go/0").meta["test_setup"].startswith("package main")


def test_task_names_are_registered_and_unknown_languages_rejected():
    for lang in LANGS:
        assert f"humanevalpack-{lang}" in TASKS
    with pytest.raises(UserError, match="no language"):
        HumanEvalPack("cobol")


def test_missing_data_names_the_file_to_provide(tmp_path):
    task = create_task("humanevalpack-rust", source=DataSource(data_dir=tmp_path))
    with pytest.raises(UserError, match="humanevalpack/humanevalpack_rust.jsonl"):
        task.problems()


def test_brace_languages_stop_at_the_end_of_the_function_and_close_it_again(tasks):
    cpp = tasks["cpp"]
    p = cpp.problem("CPP/53")
    shown = cpp.prompt(p)  # the model continues the stripped prompt, so it writes the newline first
    raw = "\n    return x + y;\n}\nint main() { return 1; }\n"
    solution = cpp.postprocess(p, Completion(p.problem_id, 0, raw), "continuation")
    assert solution == shown + "\n    return x + y;\n}\n"
    # a backend that already cut at the stop sequence: the closer is still restored
    cut = cpp.postprocess(p, Completion(p.problem_id, 0, "\n    return x + y;", finish_reason="stop"), "continuation")
    assert cut == shown + "\n    return x + y;" + "\n}\n"
    # a completion that ran out of tokens is left unclosed (it would not compile anyway)
    unfinished = cpp.postprocess(
        p, Completion(p.problem_id, 0, "\n    return x +", finish_reason="length"), "continuation"
    )
    assert unfinished == shown + "\n    return x +"
    java = tasks["java"]
    jp = java.problem("Java/53")
    sol = java.postprocess(
        jp, Completion(jp.problem_id, 0, "\n        return x + y;\n    }\n}\nclass X {}"), "continuation"
    )
    assert sol == java.prompt(jp) + "\n        return x + y;\n    }\n}\n"
    # the configured stops are never mutated, and a whole program is taken as is
    assert cpp.stop_sequences == ("\n}", "\n```")
    assert cpp.postprocess(p, Completion(p.problem_id, 0, "int main(){}"), "program") == "int main(){}"


def test_programs_end_with_the_language_trailer(tasks):
    for lang in ("js", "cpp", "rust"):
        task = tasks[lang]
        p = task.problems()[0]
        (req,) = task.programs(p, p.prompt + p.reference).values()
        trailer = LANGUAGES.get(task.exec_language)().trailer()
        assert trailer and req.program.endswith(trailer)
        assert p.tests in req.program
        assert req.language == task.exec_language


def test_go_program_merges_imports_and_drops_unused_ones(tasks):
    p = tasks["go"].problem("Go/0")  # prompt imports math
    used = go_program(p.prompt + p.reference, p)
    assert used.startswith("package main\n\nimport (\n")
    header = used.split(")", 1)[0]
    assert '"testing"' in header and '"github.com/stretchr/testify/assert"' in header and '"math"' in header
    assert used.count("package main") == 1 and '\nimport (\n    "math"\n)\n\n//' not in used
    # a body that does not use math must not import it (Go rejects unused imports)
    unused = go_program(p.prompt + "    return false\n}\n", p)
    assert '"math"' not in unused.split(")", 1)[0]
    # a use of a package the prompt did not import adds it; mentions in comments do not
    extra = go_program(p.prompt + "    // strings.x\n    _ = fmt.Sprint(1)\n    return false\n}\n", p)
    head = extra.split(")", 1)[0]
    assert '"fmt"' in head and '"strings"' not in head


def test_missing_toolchain_fails_before_anything_runs(data_dir, monkeypatch):
    from slmbench.execution.languages.base import Tool

    monkeypatch.setattr(
        LANGUAGES.get("go"), "tools", (Tool("go-not-installed", install="apt-get install -y golang-go"),)
    )
    task = create_task("humanevalpack-go", source=DataSource(data_dir=data_dir))
    p = task.problems()[0]
    with pytest.raises(UserError, match="apt-get install -y golang-go"):
        task.programs(p, p.prompt + p.reference)


# ---- canonical must pass, buggy must fail (through the real executor) ---------------------
# Go/95's canonical solution depends on map iteration order: it passes on about half the runs
FLAKY_EXCEPTIONS = {"Go/95"}


@pytest.fixture(scope="module")
def executor():
    from slmbench.execution.pool import Executor

    with Executor(workers=0) as ex:
        yield ex


@pytest.mark.toolchain
@pytest.mark.parametrize("lang", LANGS)
def test_selftest_first_problems(tasks, executor, lang):
    from slmbench.selftest import selftest_task

    result = selftest_task(tasks[lang], executor, limit=6)
    assert result.ok, [(c.problem_id, c.label, str(c.result.verdict), c.result.message) for c in result.unexpected]
    assert result.counts() == {"canonical": (6, 6), "buggy": (6, 6)}


@pytest.mark.toolchain
@pytest.mark.slow
@pytest.mark.parametrize("lang", LANGS)
def test_selftest_all_164(tasks, executor, lang):
    from slmbench.selftest import selftest_task

    result = selftest_task(tasks[lang], executor)
    assert result.ok, [(c.problem_id, c.label, str(c.result.verdict), c.result.message) for c in result.unexpected]
    counts = result.counts()
    assert counts["canonical"][1] == counts["buggy"][1] == 164
    # every documented exception still misbehaves (else the list is stale); a flaky one may pass
    # on any given run, and its own test below shows both verdicts
    tolerated = {c.problem_id for c in result.tolerated}
    known = set(tasks[lang].known_exceptions)
    assert tolerated <= known
    assert known - FLAKY_EXCEPTIONS <= tolerated


@pytest.mark.toolchain
@pytest.mark.slow
def test_go_95_canonical_depends_on_map_order_so_it_is_a_known_exception(tasks, executor):
    """Evidence for the listed exception: the same canonical program, run repeatedly, both passes
    and fails, because Go randomises map iteration and the solution only looks at two keys."""
    import dataclasses

    task = tasks["go"]
    assert "Go/95" in task.known_exceptions
    problem = task.problem("Go/95")
    (label, solution, _), *_ = task.selftest_cases(problem)
    assert label == "canonical"
    requests = []
    for i in range(24):  # textually distinct copies: no build cache or dedupe shortcut
        (req,) = task.programs(problem, solution + f"\n// copy {i}\n").values()
        requests.append(dataclasses.replace(req, key=str(i)))
    verdicts = {r.verdict.value for r in executor.run(requests)}
    assert verdicts == {"passed", "failed"}


def test_prompts_are_stripped_as_the_bigcode_harness_shows_them(tasks):
    """The harness (humanevalsynthesize-<lang>) shows ``prompt.strip()``; every shipped prompt ends
    with a newline, which we used to show, changing what a base model is asked to continue."""
    for lang, task in tasks.items():
        for p in task.problems()[:5]:
            shown = task.prompt(p)
            assert shown == p.prompt.strip() and not shown.endswith("\n"), (lang, p.problem_id)
            assert p.prompt.endswith("\n"), (lang, p.problem_id)
    py = tasks["python"]
    p = py.problem("Python/53")
    body = "\n    return x + y\n"
    # a trailing test the model wrote is cut as the harness cuts it (its stops include "\nassert")
    solution = py.postprocess(p, Completion(p.problem_id, 0, body + "\nassert add(1, 2) == 4\n"), "continuation")
    assert solution == p.prompt.rstrip() + body  # the harness keeps the prompt's leading newlines here
