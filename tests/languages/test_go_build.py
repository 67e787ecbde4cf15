"""Go's fast build (compiler and linker called directly) must give go test's verdicts, and hand
to ``go test -c`` whatever it does not cover: examples, packages outside the standard library
and testify, test functions of the wrong signature."""

from __future__ import annotations

import dataclasses

import pytest

from slmbench.data import DataSource
from slmbench.execution.languages import go
from slmbench.execution.languages.go import go_test_functions, without_http_assertions
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


def test_http_assertions_are_cut_with_their_doc_and_imports_only():
    source = (
        'package assert\n\nimport (\n\thttp "net/http"\n\turl "net/url"\n\ttime "time"\n)\n\n'
        "// Equal asserts equality.\nfunc Equal(t TestingT, a, b interface{}) bool {\n\treturn a == b\n}\n\n"
        '// HTTPError asserts an error status.\n//\n//  assert.HTTPError(t, h, "GET", "/", nil)\n'
        "func HTTPError(t TestingT, h http.HandlerFunc, m string, u string, v url.Values) bool {\n"
        "\tif h != nil {\n\t\treturn true\n\t}\n\treturn false\n}\n\n"
        "func (a *Assertions) HTTPSuccess(h http.HandlerFunc) bool {\n\treturn true\n}\n\n"
        "// WithinDuration keeps its time import.\nfunc WithinDuration(d time.Duration) bool {\n\treturn d > 0\n}\n"
    )
    cut = without_http_assertions(source)
    assert "HTTP" not in cut and "net/http" not in cut and "net/url" not in cut
    assert "func Equal(" in cut and "// Equal asserts equality." in cut
    assert '\ttime "time"\n' in cut and "func WithinDuration(" in cut and cut.count("\n}\n") == 2
    # an import still used elsewhere stays
    kept = without_http_assertions(source.replace("return a == b", "return a == b || url.Values{} == nil"))
    assert 'url "net/url"' in kept and "net/http" not in kept


@pytest.mark.toolchain
def test_the_fast_path_links_testify_without_its_http_assertions():
    # the Debian testify this project runs on is cut (a silent fallback would cost ~40 ms a build)
    assert go.testify_build() == "without HTTP assertions"  # (by module: a bare test* name is collected)


BODY = "    return x + y\n}\n"
HANDLER = "func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }"
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
    # HTTP assertions are not in the fast path's testify: go test -c with the whole one
    "http-assertion": (
        BODY + f'\nfunc TestHTTP(t *testing.T) {{\n    assert.HTTPSuccess(t, {HANDLER}, "GET", "/", nil)\n}}\n',
        Verdict.PASSED,
    ),
    "http-assertion-wrong": (
        BODY + f'\nfunc TestHTTP(t *testing.T) {{\n    assert.New(t).HTTPError({HANDLER}, "GET", "/", nil)\n}}\n',
        Verdict.FAILED,
    ),
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
        if "http." in body:
            program = program.replace("import (\n", 'import (\n    "net/http"\n', 1)
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
