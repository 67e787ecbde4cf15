"""Each language runner through the real Executor: a correct program passes, and failed tests,
runtime errors, compile errors, early ``exit(0)`` and endless loops each get their own verdict.

The programs are real benchmark problems (HumanEvalPack / MultiPL-E rows) with bodies written
here, assembled by the real tasks, so the tests also cover each task's program builder.
"""

from __future__ import annotations

import dataclasses

import pytest

from slmbench.data import DataSource
from slmbench.execution.languages.php import SKIPPED_EXTENSIONS
from slmbench.execution.pool import Executor
from slmbench.tasks import create_task
from slmbench.types import ExecLimits, Verdict

pytestmark = pytest.mark.toolchain

P, F, E, C, T = Verdict.PASSED, Verdict.FAILED, Verdict.ERROR, Verdict.COMPILE_ERROR, Verdict.TIMEOUT

# task, problem, {case: (body appended to the prompt, expected verdict)}
CASES = {
    ("humanevalpack-js", "JavaScript/53"): {
        "ok": ("  return x + y;\n}\n", P),
        "wrong": ("  return x - y;\n}\n", F),  # console.assert must fail the run
        "throws": ("  return undefinedName;\n}\n", E),
        "exit0": ("  process.exit(0);\n}\n", F),
        "loop": ("  while (true) {}\n}\n", T),
    },
    ("humanevalpack-java", "Java/53"): {
        "ok": ("        return x + y;\n    }\n}\n", P),
        "wrong": ("        return x - y;\n    }\n}\n", F),
        "throws": ("        return x / (x - x);\n    }\n}\n", E),
        "compile": ('        return "x";\n    }\n}\n', C),
        "exit0": ("        System.exit(0); return 0;\n    }\n}\n", F),
        "loop": ("        while (true) {}\n    }\n}\n", T),
    },
    ("humanevalpack-go", "Go/53"): {
        "ok": ("    return x + y\n}\n", P),
        "wrong": ("    return x - y\n}\n", F),
        "throws": ("    var a []int\n    return a[x+y+100]\n}\n", E),
        "compile": ('    return "x"\n}\n', C),
        "exit0": ("    os.Exit(0)\n    return 0\n}\n", F),
        "loop": ("    for {}\n}\n", T),
    },
    ("humanevalpack-cpp", "CPP/53"): {
        "ok": ("    return x + y;\n}\n", P),
        "wrong": ("    return x - y;\n}\n", F),
        "throws": ("    int* p = nullptr; return *p + x + y;\n}\n", E),
        "compile": ("    return undeclared;\n}\n", C),
        "exit0": ("    exit(0);\n}\n", F),
        "loop": ("    while (true) {}\n}\n", T),
    },
    ("humanevalpack-rust", "Rust/53"): {
        "ok": ("    return x + y;\n}\n", P),
        "wrong": ("    return x - y;\n}\n", F),
        "throws": ("    let v: Vec<i32> = vec![]; return v[(x + y + 100) as usize];\n}\n", E),
        "compile": ('    return "x";\n}\n', C),
        "exit0": ("    std::process::exit(0);\n}\n", F),
        "loop": ("    loop {}\n}\n", T),
    },
    ("multiple-php", "HumanEval_53_add"): {
        "ok": ("    return $x + $y;\n}\n", P),
        # the system's extensions are there (ctype, iconv, calendar), minus the skipped ones
        "extensions": (
            "    $skipped = array_filter(["
            + ", ".join(f'"{e}"' for e in sorted(SKIPPED_EXTENSIONS))
            + ', "Zend OPcache"], "extension_loaded");\n'
            '    return ctype_digit("42") && iconv("UTF-8", "ASCII", "a") === "a" && cal_days_in_month(CAL_GREGORIAN, 2, 2024) === 29\n'
            "        && !$skipped ? $x + $y : 0;\n}\n",
            P,
        ),
        "wrong": ("    return $x - $y;\n}\n", F),
        "throws": ("    return intdiv($x, 0);\n}\n", E),
        "exit0": ("    exit(0);\n}\n", F),
        "loop": ("    while (true) {}\n}\n", T),
    },
    ("multiple-rb", "HumanEval_53_add"): {
        "ok": ("  return x + y\nend\n", P),
        # a bundled gem (prime) and the standard library resolve without RubyGems' start-up
        "gems": ("  require 'prime'\n  require 'set'\n  return Set[x].sum + y if Prime.prime?(7)\nend\n", P),
        "wrong": ("  return x - y\nend\n", F),
        "throws": ("  return x / 0\nend\n", E),
        "exit0": ("  exit 0\nend\n", F),
        "exit!": ("  exit!(0)\nend\n", F),
        "loop": ("  loop do end\nend\n", T),
    },
    ("multiple-ts", "HumanEval_53_add"): {
        "ok": ("  return x + y;\n}\n", P),
        "wrong": ("  return x - y;\n}\n", F),
        "compile": ('  return "x";\n}\n', C),
        "loop": ("  while (true) {}\n}\n", T),
    },
    ("multiple-sh", "HumanEval_53_add"): {
        "ok": ("    echo $(( $1 + $2 ))\n", P),
        "wrong": ("    echo $(( $1 - $2 ))\n", F),
        "exit0": ("    exit 0\n", F),
        # the loop runs in a $(...) subshell: RLIMIT_CPU kills that process, and the script goes on
        # to fail its check; which comes first (the CPU limit or the wall clock) depends on load
        "loop": ("    while true; do :; done\n", (T, F)),
    },
    ("multiple-java", "HumanEval_53_add"): {
        "ok": ("        return x + y;\n", P),
        "wrong": ("        return x - y;\n", F),
        "compile": ('        return "x";\n', C),
    },
    ("multiple-cpp", "HumanEval_53_add"): {
        "ok": ("    return x + y;\n", P),
        "wrong": ("    return x - y;\n", F),
    },
}

LIMITS = ExecLimits(timeout_s=2.0, wall_timeout_s=6.0)


def _allowed(expected: Verdict | tuple[Verdict, ...]) -> tuple[Verdict, ...]:
    return expected if isinstance(expected, tuple) else (expected,)


@pytest.fixture(scope="module")
def results(data_dir, tmp_path_factory):
    requests, expected = [], {}
    for (task_name, pid), cases in CASES.items():
        task = create_task(task_name, source=DataSource(data_dir=data_dir))
        problem = task.problem(pid)
        assert problem is not None, (task_name, pid)
        for case, (body, verdict) in cases.items():
            (req,) = task.programs(problem, problem.prompt + body, LIMITS).values()
            key = f"{task_name}:{case}"
            requests.append(dataclasses.replace(req, key=key))
            expected[key] = verdict
    # a fresh build cache: every program is compiled here (no builds reused from earlier runs)
    with Executor(workers=0, cache_dir=tmp_path_factory.mktemp("cache")) as ex:
        got = {r.key: r for r in ex.run(requests)}
    return expected, got


@pytest.mark.parametrize("task_name", sorted({t for t, _ in CASES}))
def test_verdicts(results, task_name):
    expected, got = results
    wrong = {
        key: (str(expected[key]), str(got[key].verdict), got[key].message[:200])
        for key in expected
        if key.startswith(task_name + ":") and got[key].verdict not in _allowed(expected[key])
    }
    assert not wrong, wrong


def test_failures_carry_a_message_and_compile_time_is_separate(results):
    expected, got = results
    for key, r in got.items():
        if r.verdict is not Verdict.PASSED:
            assert r.message, key
    compiled = [r for k, r in got.items() if k.split(":")[0].endswith(("java", "go", "cpp", "rust"))]
    assert any(r.compile_s > 0 for r in compiled)
