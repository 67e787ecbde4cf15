"""Code extraction from chat answers (shared by every chat-capable backend)."""

from __future__ import annotations

from slmbench.backends.chat import code_blocks, extract_code, instruction

PROMPT = 'def add(a: int, b: int) -> int:\n    """Add two numbers."""\n'


def test_fenced_block_with_the_entry_point_is_a_program() -> None:
    answer = (
        "Sure! Here is the solution:\n\n```python\ndef add(a: int, b: int) -> int:\n    return a + b\n```\n\n"
        "Example:\n```python\nprint(add(1, 2))\n```\n"
    )
    got = extract_code(answer, "python", "add", PROMPT)
    assert got.code == "def add(a: int, b: int) -> int:\n    return a + b\n"
    assert got.form == "program" and got.fenced


def test_block_defining_the_entry_point_wins_over_an_earlier_one() -> None:
    answer = "```\npip install nothing\n```\nthen\n```py\nimport math\n\ndef add(a, b):\n    return a + b\n```"
    got = extract_code(answer, "python", "add", PROMPT)
    assert got.code.startswith("import math") and got.form == "program"


def test_language_tag_wins_when_no_block_defines_the_entry_point() -> None:
    answer = "```text\noutput\n```\n```python\nreturn a + b\n```"
    assert extract_code(answer, "python", "add", PROMPT).code == "return a + b\n"


def test_body_only_answer_is_a_continuation_of_the_prompt() -> None:
    got = extract_code("```python\n    return a + b\n```", "python", "add", PROMPT)
    assert got.form == "continuation" and got.code == "    return a + b\n"


def test_plain_answer_without_fences_is_taken_whole() -> None:
    got = extract_code("def add(a, b):\n    return a + b", "python", "add", PROMPT)
    assert got == got.__class__("def add(a, b):\n    return a + b\n", "program", False)


def test_unterminated_fence_runs_to_the_end() -> None:
    got = extract_code("Here:\n```python\ndef add(a, b):\n    return a +", "python", "add", PROMPT)
    assert got.code == "def add(a, b):\n    return a +\n" and got.fenced


def test_other_languages_and_tilde_fences() -> None:
    answer = "~~~cpp\nint add(int a, int b) { return a + b; }\n~~~"
    got = extract_code(answer, "cpp", "add", "int add(int a, int b) {\n")
    assert got.code == "int add(int a, int b) { return a + b; }\n" and got.form == "program"
    assert code_blocks("```js\nx\n```\n```go\ny\n```") == [("js", "x\n"), ("go", "y\n")]


def test_instruction_shows_the_prompt_in_a_tagged_block() -> None:
    text = instruction(PROMPT, "python")
    assert "```python\n" + PROMPT.rstrip() + "\n```" in text
    assert "```javascript" in instruction("function f() {", "js")
