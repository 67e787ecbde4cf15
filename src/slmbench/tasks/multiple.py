"""MultiPL-E HumanEval translations (Cassano et al., 2023): ``multiple-{php,rb,cpp,java,js,ts,sh}``.

Data, first found wins, from the data directory:

- ``multipl-e/humaneval-<lang>.jsonl`` (the HF ``nuprl/MultiPL-E`` rows, "reworded" variant);
- ``generations/qwen2.5-coder/problems/humaneval-<lang>.jsonl``, the exact problem files that
  Qwen2.5-Coder's published MultiPL-E figures were scored against (same fields);

or the hub dataset ``nuprl/MultiPL-E`` (config ``humaneval-<lang>``, split ``test``) when downloads
are allowed.

MultiPL-E's convention, kept exactly: generation stops at the row's ``stop_tokens``; the
solution is ``prompt + completion``; the test program is ``solution + "\\n" + tests`` (for C++,
Java and Shell the tests start by closing the function). The language's trailer follows.
MultiPL-E has no reference solutions: ``slmbench selftest`` checks that every problem's tests
run and fail on a wrong body (a body returning a type-appropriate wrong value).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from slmbench.data import DataSource
from slmbench.tasks.base import CompletionForm, truncate_at_stop
from slmbench.tasks.family import LanguageFamilyTask
from slmbench.types import Completion, ExecLimits, ExecRequest, Problem

HUB_DATASET = "nuprl/MultiPL-E"
FIELDS = ("name", "prompt", "tests")

# language key -> (executor language, MultiPL-E's stop tokens for that language)
LANGS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "php": ("php", ("\nfunction", "\n?>", "\n//", "\n#")),
    "rb": ("ruby", ("\nclass", "\ndef", "\n#", "\n\n")),
    "cpp": ("cpp", ("\n}",)),
    "java": ("java", ("\n    }\n",)),
    "js": ("javascript", ("\nfunction ", "\n/*", "\n//", "\nconsole.log")),
    "ts": ("typescript", ("\nfunction ", "\n/*", "\n//", "\nclass")),
    "sh": ("shell", ("\n}",)),
}

# The wrong body of the selftest: a value of the right type that the tests reject. Java needs
# the declared return type; the others accept one body for every problem.
WRONG_BODY: Mapping[str, str] = {
    "php": "    return null;\n}\n",
    "rb": "  return nil\nend\n",
    "cpp": "    return {};\n",
    "js": "  return undefined;\n}\n",
    "ts": "  return undefined as any;\n}\n",
    "sh": '    echo "__slmbench_wrong__"\n',
}
_JAVA_SIGNATURE = re.compile(r"public\s+static\s+([\w<>\[\], ?]+?)\s+\w+\s*\([^)]*\)\s*\{\s*$")
_JAVA_DEFAULTS = {"boolean": "false", "char": "'\\0'", "String": '"__slmbench_wrong__"'}
_JAVA_NUMERIC = ("long", "int", "double", "float", "short", "byte")


def java_wrong_body(prompt: str) -> str:
    m = _JAVA_SIGNATURE.search(prompt)
    rtype = m.group(1).strip() if m else "Object"
    if rtype in _JAVA_NUMERIC:
        value = "-123456789"
    else:
        value = _JAVA_DEFAULTS.get(rtype, "null")
    return f"        return {value};\n"


class MultiPLE(LanguageFamilyTask):
    name = "multiple"  # instances carry the full name, e.g. multiple-php
    languages = tuple(lang for lang, _ in LANGS.values())
    description = "MultiPL-E: HumanEval translated to PHP, Ruby, C++, Java, JS, TypeScript and Shell"
    prefix = "multiple"
    title = "MultiPL-E"
    hub_dataset = HUB_DATASET
    fields = FIELDS
    expected_rows = "the file should hold ~160 rows"
    LANGS = LANGS

    # Data defects, each shown by a test in tests/tasks/test_multiple.py.
    KNOWN: ClassVar[Mapping[str, Mapping[str, str]]] = {
        "cpp": {
            "HumanEval_137_compare_one": "the prompt's union declares a member `std::nullopt f3;` (a value, not "
            "a type): no program compiles (the publisher's results show the same compile error)",
        },
        "php": {
            "HumanEval_23_strlen": "the prompt declares function strlen(), a PHP built-in: every program "
            "stops with 'Cannot redeclare strlen()' before the tests (the publisher's results show it too)",
        },
    }

    def __init__(self, lang: str = "php", source: DataSource | None = None, **kwargs: Any) -> None:
        super().__init__(lang, source, **kwargs)

    def data_files(self) -> tuple[str, ...]:
        return (
            f"multipl-e/humaneval-{self.lang}.jsonl",
            f"generations/qwen2.5-coder/problems/humaneval-{self.lang}.jsonl",
        )

    def hub_config(self) -> str:
        return f"humaneval-{self.lang}"

    def row_problem(self, row: dict) -> Problem:
        name = row["name"]
        entry = re.sub(r"^HumanEval_\d+_", "", name)
        return Problem(
            task=self.name,
            problem_id=name,
            prompt=row["prompt"],
            language=self.exec_language,
            entry_point=entry,
            reference="",
            tests=row["tests"],
            meta={"stop_tokens": tuple(row.get("stop_tokens") or ())},
        )

    # ---- generation -------------------------------------------------------------------
    def postprocess(self, problem: Problem, completion: Completion, form: CompletionForm) -> str:
        if form == "program":
            return completion.text
        return problem.prompt + truncate_at_stop(completion.text, self.stop_sequences)

    def wrong_body(self, problem: Problem) -> str:
        if self.lang == "java":
            return java_wrong_body(problem.prompt)
        if self.lang == "cpp" and problem.prompt.rstrip().splitlines()[-1].startswith("Union_"):
            # MultiPL-E's C++ "Union_..." return types are not default-constructible; all have a long member
            return "    return (long)-123456789;\n"
        return WRONG_BODY[self.lang]

    def selftest_cases(self, problem: Problem) -> list[tuple[str, str, bool]]:
        return [("wrong body", problem.prompt + self.wrong_body(problem), False)]

    # ---- scoring ----------------------------------------------------------------------
    def program(self, problem: Problem, solution: str, limits: ExecLimits) -> ExecRequest:
        trailer = self.checked_trailer()
        tests = problem.tests
        if self.lang == "php":
            # the trailer is PHP code: stay in PHP mode if a generation closed it
            tests = tests.rstrip()
            if tests.endswith("?>"):
                tests = tests[:-2]
        text = solution + "\n" + tests + "\n"
        return ExecRequest(key="", language=self.exec_language, program=text + trailer, limits=limits)
