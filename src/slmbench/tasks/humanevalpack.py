"""HumanEvalPack synthesis (Muennighoff et al., 2023): HumanEval in six languages, with the
canonical and a deliberately buggy solution for every problem.

Tasks ``humanevalpack-{python,js,java,go,cpp,rust}``. Data, first found wins: the data directory
(``humanevalpack/humanevalpack_<lang>.jsonl``), or the hub dataset ``bigcode/humanevalpack``
(config ``<lang>``, split ``test``) when downloads are allowed.

The model continues ``prompt.strip()``, as in the BigCode harness (``humanevalsynthesize-<lang>``,
the reference evaluator of HumanEvalPack): the trailing newline is left for the model to write,
so ``{`` + newline + indent tokenise as in training data; the solution is ``prompt.rstrip()`` plus
the continuation. Generation stops where the function ends: Python at the usual
HumanEval stops; the brace languages at the first closing brace in column 0 (``"\\n}"``; Java's
method at ``"\\n    }\\n"``), after which the task closes the function (and Java's class) again.
Test programs are ``solution + "\\n" + test`` plus the language's trailer (see
``execution/languages``). Go needs more: the file is one ``_test.go`` of ``package main`` whose
imports are the tests' (``testing``, testify) plus those of the prompt that the code uses (Go
rejects unused imports, and a model's body may not use all that the prompt imports).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from slmbench.data import DataSource
from slmbench.tasks.base import CompletionForm, truncate_at_stop
from slmbench.tasks.family import LanguageFamilyTask
from slmbench.types import Completion, ExecLimits, ExecRequest, Problem

HUB_DATASET = "bigcode/humanevalpack"
FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")


# language key in the task name -> (executor language, stop sequences, closer appended after a stop)
LANGS: Mapping[str, tuple[str, tuple[str, ...], str]] = {
    "python": (
        "python",
        ("\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\nassert", "\n```", '\n"""', "\n'''"),
        "",
    ),
    "js": ("javascript", ("\n}", "\n```"), "\n}\n"),
    "java": ("java", ("\n    }\n", "\n```"), "\n    }\n}\n"),
    "go": ("go", ("\n}", "\n```"), "\n}\n"),
    "cpp": ("cpp", ("\n}", "\n```"), "\n}\n"),
    "rust": ("rust", ("\n}", "\n```"), "\n}\n"),
}

# Standard Go packages a solution may use without importing them in the prompt: the task adds
# the import when the code refers to the package (as the BigCode harness does).
GO_PACKAGES = (
    "math",
    "strings",
    "fmt",
    "strconv",
    "sort",
    "time",
    "bytes",
    "regexp",
    "unicode",
    "math/rand",
    "crypto/md5",
    "encoding/hex",
    "reflect",
    "os",
)
_GO_IMPORT_BLOCK = re.compile(r"^import\s*\((.*?)\)\s*$|^import\s+(\"[^\"]+\")\s*$", re.MULTILINE | re.DOTALL)
_GO_PACKAGE = re.compile(r"^package\s+\w+\s*$", re.MULTILINE)
# comments, string and rune literals: removed before looking for uses of a package
_GO_NOISE = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|`[^`]*`|\'(?:\\.|[^\'\\\n])+\'', re.DOTALL)


class HumanEvalPack(LanguageFamilyTask):
    name = "humanevalpack"  # instances carry the full name, e.g. humanevalpack-go
    languages = tuple(lang for lang, _, _ in LANGS.values())
    description = "HumanEvalPack synthesis: HumanEval in Python, JS, Java, Go, C++ and Rust (canonical + buggy)"
    prefix = "humanevalpack"
    title = "HumanEvalPack"
    hub_dataset = HUB_DATASET
    fields = FIELDS
    expected_rows = "the file should hold 164 rows"
    LANGS = LANGS
    offers_shots = True  # k-shot: other problems in the same language, solved

    # Data defects, each shown by a test in tests/tasks/test_humanevalpack.py.
    KNOWN: ClassVar[Mapping[str, Mapping[str, str]]] = {
        "go": {
            "Go/95": (
                "the canonical CheckDictCase stops after the second key (`else { break }`), so its answer "
                "depends on Go's random map iteration order: it fails about half the runs "
                "(tests/tasks/test_humanevalpack.py shows both verdicts)"
            ),
        },
    }

    def __init__(self, lang: str = "python", source: DataSource | None = None, **kwargs: Any) -> None:
        super().__init__(lang, source, **kwargs)
        self.closer = LANGS[lang][2]

    def data_files(self) -> tuple[str, ...]:
        return (f"humanevalpack/humanevalpack_{self.lang}.jsonl", f"humanevalpack/humanevalpack_{self.lang}.jsonl.gz")

    def hub_config(self) -> str:
        return self.lang

    def row_problem(self, row: dict) -> Problem:
        meta = {k: row[k] for k in ("buggy_solution", "import", "test_setup", "declaration") if row.get(k)}
        return Problem(
            task=self.name,
            problem_id=row["task_id"],
            prompt=row["prompt"],
            language=self.exec_language,
            entry_point=row["entry_point"],
            reference=row["canonical_solution"],
            tests=row["test"],
            meta=meta,
        )

    # ---- generation -------------------------------------------------------------------
    def prompt(self, problem: Problem, shots: int = 0) -> str:
        # Every shipped prompt ends with a newline; the harness strips it (its get_prompt comment:
        # "{" then "\n    " is one token run in training data, a bare "\n" token is not).
        return super().prompt(problem, shots).strip()

    def postprocess(self, problem: Problem, completion: Completion, form: CompletionForm) -> str:
        if form == "program":
            return completion.text
        text = completion.text
        cut = truncate_at_stop(text, self.stop_sequences)
        stopped = len(cut) < len(text) or completion.finish_reason == "stop"
        return problem.prompt.rstrip() + cut + (self.closer if stopped else "")

    def reference_completion(self, problem: Problem) -> tuple[str, CompletionForm]:
        return problem.prompt + problem.reference, "program"

    def selftest_cases(self, problem: Problem) -> list[tuple[str, str, bool]]:
        cases = [("canonical", problem.prompt + problem.reference, True)]
        buggy = problem.meta.get("buggy_solution")
        if buggy:
            cases.append(("buggy", problem.prompt + buggy, False))
        return cases

    # ---- scoring ----------------------------------------------------------------------
    def program(self, problem: Problem, solution: str, limits: ExecLimits) -> ExecRequest:
        trailer = self.checked_trailer()
        if self.lang == "go":
            text = go_program(solution, problem)
        else:
            text = solution + "\n" + problem.tests + "\n"
        return ExecRequest(key="", language=self.exec_language, program=text + trailer, limits=limits)


def _go_imports(block_text: str) -> list[str]:
    return re.findall(r"\"([^\"]+)\"", block_text)


def go_program(solution: str, problem: Problem) -> str:
    """One ``package main`` test file: the tests' imports, plus each import of the prompt (or a
    common standard package) that the code refers to, then the code and the tests."""
    setup = str(problem.meta.get("test_setup", "package main\n"))
    test_imports = [imp for m in _GO_IMPORT_BLOCK.finditer(setup) for imp in _go_imports(m.group(0))]
    body = _GO_PACKAGE.sub("", solution)
    declared = [imp for m in _GO_IMPORT_BLOCK.finditer(body) for imp in _go_imports(m.group(0))]
    body = _GO_IMPORT_BLOCK.sub("", body)
    code = body + "\n" + problem.tests
    imports = list(test_imports)
    scanned = _GO_NOISE.sub(" ", code)  # "list of strings." in a comment is no use of strings
    for pkg in dict.fromkeys([*declared, *GO_PACKAGES]):
        if pkg in imports:
            continue
        alias = pkg.rsplit("/", 1)[-1]
        if re.search(rf"(?<![\w.]){re.escape(alias)}\.", scanned):
            imports.append(pkg)
    header = "package main\n\nimport (\n" + "".join(f'    "{imp}"\n' for imp in imports) + ")\n"
    return header + "\n" + code + "\n"
