"""Go's fast build (compiler and linker called directly) must give go test's verdicts, and hand
to ``go test -c`` whatever it does not cover: examples, packages outside the standard library
and testify, test functions of the wrong signature."""

from __future__ import annotations

import dataclasses

import pytest

from slmbench.data import DataSource
from slmbench.execution.languages.go import go_test_functions
from slmbench.execution.pool import Executor
from slmbench.tasks import create_task
from slmbench.types import ExecLimits, Verdict


def test_test_functions_follow_go_tests_naming_rule():
    source = (
        "func TestAdd(t *testing.T) {}\n"
        "func Testable() {}\n"  # lower case after "Test": not a test
        "func Test(t *testing.T) {}\n"
        "func Test_x(t *testing.T) {}\n"
        "func TestMain(m *testing.M) {}\n"  # the hook, not a test
        "func (s S) TestMethod(t *testing.T) {}\n"  # a method: not a test
        "  func  TestIndented (t *testing.T) {}\n"
    )
    assert go_test_functions(source) == ["TestAdd", "Test", "Test_x", "TestIndented"]


def test_examples_and_fuzz_targets_leave_the_build_to_go_test():
    assert go_test_functions("func ExampleAdd() {}\nfunc TestAdd(t *testing.T) {}\n") is None
    assert go_test_functions("func FuzzAdd(f *testing.F) {}\n") is None


BODY = "    return x + y\n}\n"
CASES = {
    # go test runs examples: a wrong "// Output:" fails the run
    "example-wrong": (
        BODY + "\nfunc ExampleAdd() {\n    fmt.Println(Add(1, 2))\n    // Output: 4\n}\n",
        Verdict.FAILED,
    ),
    "example-right": (
        BODY + "\nfunc ExampleAdd() {\n    fmt.Println(Add(1, 2))\n    // Output: 3\n}\n",
        Verdict.PASSED,
    ),
    # a package of the GOPATH outside the prebuilt set still resolves (through go test -c)
    "require": (
        BODY + "\nfunc TestRequire(t *testing.T) {\n    require.Equal(t, 5, Add(2, 3))\n}\n",
        Verdict.PASSED,
    ),
    "require-wrong": (
        BODY + "\nfunc TestRequire(t *testing.T) {\n    require.Equal(t, 6, Add(2, 3))\n}\n",
        Verdict.FAILED,
    ),
    # go test refuses a TestXxx that is no test function: a compile error either way
    "bad-signature": (BODY + "\nfunc TestHelper(x int) bool {\n    return x > 0\n}\n", Verdict.COMPILE_ERROR),
    # an extra test of the solution runs too
    "extra-test-fails": (BODY + '\nfunc TestExtra(t *testing.T) {\n    t.Fatal("extra")\n}\n', Verdict.FAILED),
    # a test name inside a comment only (the fast path lists it, go test -c decides)
    "commented": (BODY + "\n/*\nfunc TestGhost(t *testing.T) {}\n*/\n", Verdict.PASSED),
}


@pytest.mark.toolchain
def test_fast_and_fallback_builds_give_go_tests_verdicts(data_dir, tmp_path):
    task = create_task("humanevalpack-go", source=DataSource(data_dir=data_dir))
    problem = task.problem("Go/53")
    limits = ExecLimits(timeout_s=5.0)
    requests = []
    for case, (body, _) in CASES.items():
        (req,) = task.programs(problem, problem.prompt + body, limits).values()
        program = req.program
        if "require." in body:  # the test file's imports are the task's: add testify/require
            program = program.replace("import (\n", 'import (\n    "github.com/stretchr/testify/require"\n', 1)
        if "fmt.Println" in body and '"fmt"' not in program:
            program = program.replace("import (\n", 'import (\n    "fmt"\n', 1)
        requests.append(dataclasses.replace(req, key=case, program=program))
    with Executor(workers=0, cache_dir=tmp_path / "cache") as ex:
        got = {r.key: r for r in ex.run(requests)}
    wrong = {
        case: (str(expected), str(got[case].verdict), got[case].message[:200])
        for case, (_, expected) in CASES.items()
        if got[case].verdict is not expected
    }
    assert not wrong, wrong
