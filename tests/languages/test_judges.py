"""How each language reads an outcome, and the source analysis the runners rely on (no toolchain)."""

from __future__ import annotations

import pytest

from slmbench.execution.languages import LANGUAGES
from slmbench.execution.languages.base import Outcome, judge_by_markers
from slmbench.execution.languages.cpp import leading_includes
from slmbench.execution.languages.java import main_class
from slmbench.types import Verdict


def out(code, stdout="", stderr="", token=False, timed_out=False):
    return Outcome(exit_code=code, stdout=stdout, stderr=stderr, timed_out=timed_out, token_seen=token)


def test_judge_by_markers():
    assert judge_by_markers(out(0, token=True), ("X",)) == (Verdict.PASSED, "")
    # exit 0 without the token: the program left before the tests finished
    assert judge_by_markers(out(0), ("X",))[0] is Verdict.FAILED
    # the token alone is not enough either
    assert judge_by_markers(out(1, token=True), ("X",))[0] is Verdict.ERROR
    assert judge_by_markers(out(1, stderr="boom\nX here"), ("X",)) == (Verdict.FAILED, "X here")
    assert judge_by_markers(out(-11), ("X",)) == (Verdict.ERROR, "killed by signal 11")
    assert judge_by_markers(out(None, timed_out=True), ("X",))[0] is Verdict.TIMEOUT
    assert judge_by_markers(out(2, stderr="Fatal: y"), ("X",), ("Fatal",)) == (Verdict.ERROR, "Fatal: y")


CASES = [
    ("javascript", out(1, stderr="AssertionError [ERR_ASSERTION]: console.assert failed"), Verdict.FAILED),
    ("javascript", out(1, stderr="TypeError: x is not a function"), Verdict.ERROR),
    ("java", out(1, stderr='Exception in thread "main" java.lang.AssertionError'), Verdict.FAILED),
    ("java", out(1, stderr='Exception in thread "main" java.lang.NullPointerException'), Verdict.ERROR),
    ("cpp", out(-6, stderr="test.bin: main.cpp:9: int f(): Assertion `f(1) == 2' failed."), Verdict.FAILED),
    ("cpp", out(-11), Verdict.ERROR),
    ("go", out(1, stdout="--- FAIL: TestX (0.00s)\n    Error Trace: x\n    Error: Not equal"), Verdict.FAILED),
    ("go", out(2, stdout="--- FAIL: TestX\npanic: runtime error: index out of range [5]"), Verdict.ERROR),
    ("rust", out(101, stdout="thread 't' panicked at m.rs:3:5:\nassertion `left == right` failed"), Verdict.FAILED),
    ("rust", out(101, stdout="thread 't' panicked at m.rs:3:5:\nindex out of bounds"), Verdict.ERROR),
    ("php", out(255, stderr="PHP Fatal error:  Uncaught Exception: Test failed! in x.php:3"), Verdict.FAILED),
    ("php", out(255, stderr="PHP Parse error: syntax error"), Verdict.ERROR),
    ("ruby", out(1, stdout="Failure: test_add(TestHumanEval)"), Verdict.FAILED),
    ("ruby", out(1, stdout="Error: test_add(TestHumanEval): ZeroDivisionError"), Verdict.ERROR),
    ("shell", out(1), Verdict.FAILED),
    ("shell", out(2, stderr="main.sh: line 3: syntax error near unexpected token"), Verdict.ERROR),
    ("shell", out(127, stderr="main.sh: line 3: bc: command not found"), Verdict.ERROR),
]


@pytest.mark.parametrize(("lang", "outcome", "verdict"), CASES)
def test_language_judges(lang, outcome, verdict):
    got, message = LANGUAGES.get(lang)().judge(outcome)
    assert got is verdict
    assert message


@pytest.mark.parametrize("lang", ["javascript", "typescript", "java", "cpp", "go", "rust", "php", "ruby", "shell"])
def test_a_clean_exit_needs_the_token(lang):
    language = LANGUAGES.get(lang)()
    assert language.judge(out(0, token=True))[0] is Verdict.PASSED
    assert language.judge(out(0, token=False))[0] is Verdict.FAILED


def test_leading_includes_stop_at_the_first_line_of_code():
    src = "/*\n doc\n*/\n#include<stdio.h>\n// c\n#include <vector>\nusing namespace std;\n#include<algorithm>\n"
    assert leading_includes(src) == ("#include<stdio.h>", "#include <vector>")
    assert leading_includes("#define X 1\n#include<vector>\n") == ()
    assert leading_includes("#include<assert.h>\n#include<bits/stdc++.h>\nlong f() {") == (
        "#include<assert.h>",
        "#include<bits/stdc++.h>",
    )


def test_java_main_class_ignores_comments_and_strings():
    assert (
        main_class("class Solution {\n}\npublic class Main {\n    public static void main(String[] a) {}\n}") == "Main"
    )
    src = 'class Problem {\n    // the class and the rest\n    String s = "class X {";\n    public static void main(String[] a) {}\n}'
    assert main_class(src) == "Problem"
