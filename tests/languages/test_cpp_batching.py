"""The gate deciding which C++ test programs may be wrapped in a namespace and built together.

Rule tests use small programs written here; the real-data tests use HumanEvalPack's canonical
and buggy C++ programs, and the semantic test compiles some of them alone and wrapped with g++
and compares what they do.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from slmbench.data import DataSource
from slmbench.execution.languages.cpp import TRAILER, leading_includes
from slmbench.execution.languages.cpp_batching import (
    batch_blocker,
    expanded_identifiers,
    identifiers,
    scan,
    trailer_names,
)
from slmbench.tasks import create_task
from slmbench.types import ExecLimits

HEAD = "#include<stdio.h>\n#include<vector>\n#include<string>\nusing namespace std;\n"
TESTS = "#undef NDEBUG\n#include<assert.h>\nint main(){\n    assert(f(2) == 3);\n}\n"


def program(decls: str, body: str = "return x + 1;", head: str = HEAD) -> str:
    """A program in HumanEvalPack's shape: includes, declarations, ``f``, then the tests."""
    return f"{head}{decls}\nint f(int x){{\n    {body}\n}}\n{TESTS}"


def blocker(source: str, header_names: frozenset[str] = frozenset()) -> str | None:
    return batch_blocker(source, leading_includes(source), header_names)


def assert_blocked(source: str, keyword: str, header_names: frozenset[str] = frozenset()) -> None:
    reason = blocker(source, header_names)
    assert reason is not None, f"admitted, but must block ({keyword}):\n{source}"
    assert keyword.lower() in reason.lower(), reason


def assert_admitted(source: str, header_names: frozenset[str] = frozenset()) -> None:
    assert blocker(source, header_names) is None, f"{blocker(source, header_names)}:\n{source}"


# --- tokens -----------------------------------------------------------------------------------


def test_identifiers_skip_literals_comments_and_numbers():
    text = "int strlen(const char* s); /* size_t */ // ptrdiff_t\nx = \"wchar_t\"; c = 'y'; n = 1e10 + 0x1fULL + 1'000;"
    assert identifiers(text) == frozenset({"int", "strlen", "const", "char", "s", "x", "c", "n"})


def test_scan_collapses_literals_and_sets_directives_apart():
    s = scan('#include<vector>\nchar q = \'\\\'\'; auto s = L"a\\"b" u8"c"; int n = 1\'000;\n// #define X\n')
    assert s.problem is None
    assert [d.text for d in s.directives] == ["#include<vector>"]
    assert [t.kind for t in s.tokens if t.kind in ("string", "char", "number")] == [
        "char",
        "string",
        "string",
        "number",
    ]
    assert "1'000" in [t.text for t in s.tokens]


def test_words_inside_literals_and_comments_do_not_block():
    body = (
        "string s = \"namespace extern #define operator??\"; char c = '\\''; /* asm */ // __LINE__\n    return x + 1;"
    )
    assert_admitted(program("", body))
    assert_admitted(program("", "return x + 1'000 - 999;"))


@pytest.mark.parametrize(
    ("snippet", "keyword"),
    [
        ('auto s = R"(raw)";', "raw"),
        ("int y = 1 + \\\n 2;", "splice"),
        ("int y = 1 ??- 2;", "trigraph"),
        ("int y[2] = <%1, 2%>;", "digraph"),
        ("int y = x; %:define Z", "digraph"),
        ("int y = x; /* never closed", "comment"),
        ("int $y = x;", "character"),
    ],
)
def test_lexical_features_block(snippet, keyword):
    assert_blocked(program("", snippet + "\n    return x + 1;"), keyword)


@pytest.mark.parametrize(
    "word",
    [
        "asm",
        "__asm__",
        "__attribute__",
        "extern",
        "thread_local",
        "_Pragma",
        "__COUNTER__",
        "__LINE__",
        "__FILE__",
        "export",
        "module",
        "import",
        "__PRETTY_FUNCTION__",
    ],
)
def test_forbidden_words_block_anywhere(word):
    assert_blocked(program("", f"int {word}_ok = 0; {word};\n    return x + 1;"), word)
    assert_admitted(program("", f"int {word}_ok = 0;\n    return x + 1;"))


def test_operator_and_friend_block():
    assert_blocked(program("struct P { int a; bool operator<(const P& o) const { return a < o.a; } };"), "operator")
    assert_blocked(program("struct P { int a; friend void g(P); };"), "friend")


# --- namespace and preprocessor ---------------------------------------------------------------


def test_using_namespace_std_only():
    assert_admitted(program("", "using namespace std;\n    return x + 1;"))
    assert_blocked(program("namespace { int g() { return 1; } }"), "namespace")
    assert_blocked(program("", "namespace v = std;\n    return x + 1;"), "namespace")
    assert_blocked(program("using namespace std::chrono;"), "namespace")


def test_only_leading_includes_and_the_assert_lines_are_directives():
    assert_admitted(program("") + "#  undef   NDEBUG\n# include <assert.h>\n")
    assert_blocked(program("#define N 5"), "define")
    assert_blocked(program('#pragma GCC optimize("O2")'), "pragma")
    assert_blocked(program("#include<map>"), "include")
    assert_blocked(program("#if 1\n#endif"), "#if")
    assert_blocked(program("", "return x + 1;\n#line 7"), "line")
    # the caller's leading lines must be the program's own
    source = program("")
    assert batch_blocker(source, ("#include<stdio.h>",), frozenset()) is not None


def test_directive_inside_a_function_blocks():
    assert_blocked(program("", "#undef NDEBUG\n    return x + 1;"), "braces")


# --- namespace scope ----------------------------------------------------------------------------


def test_function_definitions_are_admitted():
    decls = (
        "template <typename T, typename U = int> T twice(T v) { return v + v; }\n"
        "static inline long long sq(long long v) noexcept { return v * v; }\n"
        "auto half(int v) -> int { return v / 2; }\n"
        "vector<pair<int, int>> pairs(const vector<int>& v, int k = 2) { return {}; }\n"
        "struct Box { int v; int get() const; Box(int a); };\n"
        "int Box::get() const { return v; }\n"
        "Box::Box(int a) { v = a; }\n"
        "int helper(int);\n;\n"
    )
    assert_admitted(program(decls))


def test_unusual_function_forms_block():
    assert_blocked(program("struct B { int v; B(int a); };\nB::B(int a) : v(a) {}"), "initialiser")
    assert_blocked(program("int g(int a) try { return a; } catch (...) { return 0; }"), "try")
    assert_blocked(program("int (*pick())(int) { return nullptr; }"), "not a plain function")
    assert_blocked(program("template <> int tw<int>(int v) { return v; }"), "specialisation")
    assert_blocked(program("int g(int) = delete;"), "= delete")


def test_class_and_enum_definitions_are_admitted():
    decls = (
        "struct Node { int v; Node* next; static const int K = 3; };\n"
        "class Tree : public Node { public: int depth() { return 1; } };\n"
        "template <class T> struct Holder { T value; };\n"
        "enum class Color : char { Red, Green };\n"
        "enum Mode { FAST = 1 << 2, SLOW };\n"
        "union Bits { int i; float f; };\n"
        "struct Later;\n"
    )
    assert_admitted(program(decls))


def test_class_definitions_with_objects_block():
    assert_blocked(program("struct P { int a; } p;"), "declarator")
    assert_blocked(program("struct { int a; } anon;"), "declarator")
    assert_blocked(program("struct { int a; };"), "unnamed")
    # a static inline member is initialised dynamically in every process of the batch
    assert_blocked(program("struct C { static inline vector<int> cache = vector<int>(9); };"), "inline")


def test_typedef_and_alias():
    assert_admitted(program("typedef vector<pair<int, string>> table;\nusing Grid = vector<vector<int>>;"))
    assert_admitted(program("template <class T> using Vec = vector<T>;"))
    assert_blocked(program("typedef int (*fn)(int);"), "typedef")
    assert_blocked(program("typedef int A, B;"), "typedef")
    assert_blocked(program("using std::vector;"), "variable")


@pytest.mark.parametrize(
    "decl",
    [
        "int g(int n);",
        "void g();",
        "void g(void);",
        "bool g(const pair<int, int>& a, vector<int> b);",
        "string g(string s, int k = 5);",
        "struct Node { int v; };\nint g(Node* n);",
    ],
)
def test_prototypes_are_admitted(decl):
    assert_admitted(program(decl))


@pytest.mark.parametrize(
    "decl",
    [
        "vector<int> v(n);",
        "vector<int> v(INT_MAX);",
        "struct Foo { Foo(int) {} };\nFoo f(bar);",
        "int x(a * b);",
        "int v(5);",
        "struct Foo { Foo(int) {} };\nconst int bar = 2;\nFoo f(bar);",
        'string s("abc");',
        "vector<int> v(10, 0);",
    ],
)
def test_variables_that_look_like_prototypes_block(decl):
    assert_blocked(program(decl), "variable")


@pytest.mark.parametrize(
    "decl",
    [
        "const int N = 100;",
        "static constexpr long long MOD = 1e9 + 7;",
        "const int A = 3;\nconst int B = (A << 2) * 2 - 1;",
        "const double EPS = 1e-9;",
        "const char SEP = ',';",
        "const int INF = INT_MAX;",
        "constexpr bool DEBUG = false;",
    ],
)
def test_builtin_constants_are_admitted(decl):
    assert_admitted(program(decl))


@pytest.mark.parametrize(
    "decl",
    [
        "int cnt;",
        "static int cnt = 0;",
        "vector<int> memo;",
        "map<int, int> seen{{1, 2}};",
        "int table[] = {1, 2, 3};",
        "auto sq = [](int v) { return v * v; };",
        "auto n = 5;",
        'const string NAME = "x";',
        "const double PI = acos(-1.0);",
        "const int A = 1, B = 2;",
        "const int* P = nullptr;",
        "int seed = rand();",
    ],
)
def test_namespace_scope_variables_block(decl):
    assert_blocked(program(decl), "variable")


# --- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decl", "name"),
    [
        ("int count(int v) { return v; }", "count"),
        ("struct count { int v; };", "count"),
        ("enum Kind { count, other };", "count"),
        ("typedef long count;", "count"),
        ("using count = long;", "count"),
        ("const int count = 3;", "count"),
        ("int count(int v);", "count"),
        ("struct Box { int get(); };\nint Box::get() { return 1; }", "box"),
    ],
)
def test_declared_names_may_not_be_header_names(decl, name):
    headers = frozenset({name, name.capitalize()})
    assert_blocked(program(decl), name, headers)
    assert_admitted(program(decl), frozenset({"something_else"}))


def test_enumerators_of_scoped_enums_stay_inside_the_enum():
    assert_admitted(program("enum class Kind { count };"), frozenset({"count"}))


def test_main_is_exempt_and_slmbench_names_are_reserved():
    assert_admitted(program(""), frozenset({"main"}))
    assert_admitted(program("", "int slmbench_user_main(); return x + 1;"))
    assert_blocked(program("int slmbench_member_0() { return 1; }"), "slmbench_member_0")
    assert_blocked(program("", "return slmbench_member_1::f(x);"), "slmbench_member_1")
    assert_blocked(program("", "return x + SLMBENCH_ASSERT_LEADS;"), "SLMBENCH_ASSERT_LEADS")
    assert_blocked(program("int __helper(int v) { return v; }"), "reserved")


def test_printing_type_names_blocks():
    assert_blocked(program("", "string n = typeid(x).name();\n    return x + 1;"), "type name")
    assert_admitted(program("", "bool same = typeid(x) == typeid(int);\n    return x + 1;"))


@pytest.mark.toolchain
def test_names_of_the_trailer_headers_count_too():
    # alone, this `write` would be a candidate in the trailer's write(3, token, n)
    assert "write" in trailer_names()
    assert_blocked(program("int write(int fd, const char* s, unsigned long n) { return 0; }"), "write")


# --- real programs --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_programs(data_dir: Path) -> list[tuple[str, str, str]]:
    """(problem id, canonical|buggy, program without the trailer) of HumanEvalPack C++."""
    task = create_task("humanevalpack-cpp", source=DataSource(data_dir=data_dir))
    found = []
    for problem in task.problems():
        for label, solution, _ in task.selftest_cases(problem):
            for req in task.programs(problem, solution, ExecLimits()).values():
                assert req.program.endswith(TRAILER)
                found.append((problem.problem_id, label, req.program[: -len(TRAILER)]))
    return found


@pytest.fixture(scope="module")
def verdicts(real_programs) -> dict[tuple[str, str], str | None]:
    names: dict[tuple[str, ...], frozenset[str]] = {}
    out = {}
    for pid, label, body in real_programs:
        leading = leading_includes(body)
        if leading not in names:
            names[leading] = expanded_identifiers(leading)
        out[(pid, label)] = batch_blocker(body, leading, names[leading])
    return out


@pytest.mark.toolchain
def test_most_real_programs_are_admitted(verdicts):
    for label in ("canonical", "buggy"):
        mine = {pid: why for (pid, lab), why in verdicts.items() if lab == label}
        admitted = sum(why is None for why in mine.values()) / len(mine)
        blocked = {pid: why for pid, why in mine.items() if why is not None}
        print(f"{label}: {admitted:.1%} of {len(mine)} admitted; blocked: {blocked}")
        assert len(mine) == 164
        assert admitted >= 0.95


@pytest.mark.toolchain
def test_the_strlen_program_is_blocked(verdicts):
    for label in ("canonical", "buggy"):
        assert "strlen" in (verdicts[("CPP/23", label)] or "")


# --- wrapped builds mean what solo builds mean ------------------------------------------------------

SOLO_MAIN = "\n#undef main\nint main() { slmbench_user_main(); return 0; }\n"
FLAGS = ["g++", "-std=c++17", "-O0", "-Dmain=slmbench_user_main", "-w"]
_ASSERT_LINES = ("#undef NDEBUG", "#include<assert.h>", "#include <assert.h>")


def without_hoisted(body: str, leading: tuple[str, ...]) -> str:
    """``body`` minus its leading include lines and the assert lines (these go to the top)."""
    pending, kept = list(leading), []
    for line in body.splitlines():
        if pending and line.strip() == pending[0]:
            pending.pop(0)
        elif line.strip() not in _ASSERT_LINES:
            kept.append(line)
    return "\n".join(kept)


def wrapped(bodies: list[str]) -> str:
    leading = leading_includes(bodies[0])
    parts = [*leading, "#undef NDEBUG", "#include <assert.h>"]
    for i, body in enumerate(bodies):
        parts += [f"namespace slmbench_member_{i} {{", without_hoisted(body, leading), "}"]
    calls = "".join(f"case {i}: slmbench_member_{i}::slmbench_user_main(); break; " for i in range(len(bodies)))
    parts += ["#undef main", "#include <cstdlib>", "int main(int argc, char** argv) {"]
    parts += [f"    switch (std::atoi(argv[1])) {{ {calls}}}", "    return 0;", "}"]
    return "\n".join(parts) + "\n"


def compile_all(sources: dict[str, str], tmp: Path) -> dict[str, bool]:
    """Compiles each source (in parallel: g++ is the slow part); name -> built."""
    procs = {}
    for name, text in sources.items():
        (tmp / f"{name}.cpp").write_text(text)
        procs[name] = subprocess.Popen([*FLAGS, f"{name}.cpp", "-o", name], cwd=tmp, stderr=subprocess.DEVNULL)
    return {name: proc.wait(timeout=60) == 0 for name, proc in procs.items()}


def outcome(tmp: Path, name: str, *args: str) -> tuple[int, bytes]:
    """Exit status and stdout (stderr differs: assert messages name the enclosing function)."""
    done = subprocess.run([str(tmp / name), *args], cwd=tmp, capture_output=True, timeout=10)
    return done.returncode, done.stdout


Outcomes = list[tuple[int, bytes] | None]


def solo_vs_wrapped(bodies: list[str], tmp: Path) -> tuple[Outcomes, Outcomes]:
    """What each program does built alone and built wrapped with the others (None: no build)."""
    sources = {f"solo{i}": body + SOLO_MAIN for i, body in enumerate(bodies)} | {"batch": wrapped(bodies)}
    built = compile_all(sources, tmp)
    solo = [outcome(tmp, f"solo{i}") if built[f"solo{i}"] else None for i in range(len(bodies))]
    batch = [outcome(tmp, "batch", str(i)) if built["batch"] else None for i in range(len(bodies))]
    return solo, batch


# problems sharing one include set, whose buggy versions fail in different ways and end quickly
SEMANTIC_PROBLEMS = ("CPP/4", "CPP/20", "CPP/21", "CPP/32")


@pytest.mark.toolchain
def test_admitted_real_programs_behave_the_same_wrapped(real_programs, verdicts, tmp_path):
    chosen = [(pid, label, body) for pid, label, body in real_programs if pid in SEMANTIC_PROBLEMS]
    assert len(chosen) == 2 * len(SEMANTIC_PROBLEMS)
    assert all(verdicts[(pid, label)] is None for pid, label, _ in chosen)
    assert len({leading_includes(body) for *_, body in chosen}) == 1
    solo, batch = solo_vs_wrapped([body for *_, body in chosen], tmp_path)
    assert None not in batch
    assert batch == solo
    # the comparison can tell passing from failing programs
    codes = [code for code, _ in solo]
    assert 0 in codes and any(code != 0 for code in codes)


@pytest.mark.toolchain
def test_the_comparison_catches_a_hidden_overload(tmp_path):
    """With <cstring> in scope, ``strlen("")`` alone calls the C function; wrapped, the program's
    own ``strlen(string)`` hides it. The gate blocks it, and the comparison sees the difference."""
    head = "#include<stdio.h>\n#include<cstring>\n#include<string>\nusing namespace std;\n"
    body = head + "int strlen(string s){ return s.length() - 1; }\n" + TESTS.replace("f(2) == 3", 'strlen("") == 0')
    leading = leading_includes(body)
    assert "strlen" in (batch_blocker(body, leading, expanded_identifiers(leading)) or "")
    solo, batch = solo_vs_wrapped([body], tmp_path)
    assert solo[0] is not None and solo[0][0] == 0
    assert batch[0] is not None and batch[0][0] != 0


@pytest.mark.toolchain
def test_model_written_programs(generations_dir: Path):
    """Qwen2.5-Coder's MultiPL-E C++ programs as the publisher ran them: the scanner copes with
    model-written code (any cut of it too) and still admits most."""
    path = generations_dir / "qwen2.5-coder" / "7b-base" / "multipl-e" / "humaneval-cpp-details.json"
    codes = [run["code"] for runs in json.loads(path.read_text()).values() for _, run in runs]
    names: dict[tuple[str, ...], frozenset[str]] = {}
    reasons = []
    for code in codes:
        leading = leading_includes(code)
        if leading not in names:
            names[leading] = expanded_identifiers(leading)
        reasons.append(batch_blocker(code, leading, names[leading]))
        for cut in range(0, len(code), 97):  # never an exception, whatever is cut off
            assert isinstance(batch_blocker(code[:cut], leading_includes(code[:cut]), frozenset()), str | None)
    admitted = reasons.count(None) / len(reasons)
    print(f"qwen2.5-coder-7b multipl-e: {admitted:.1%} of {len(reasons)} admitted; {sorted(filter(None, reasons))}")
    assert len(reasons) == 161
    assert admitted >= 0.85
    assert any(reason and "operator" in reason for reason in reasons)
