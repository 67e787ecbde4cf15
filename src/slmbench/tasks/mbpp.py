"""MBPP (Austin et al., 2021): crowd-sourced entry-level Python problems, three asserts each.

Three tasks, one class (:meth:`MBPP.for_name`):

- ``mbpp``: the 500-task test split (task ids 11-510), the set the BigCode harness's ``mbpp`` uses;
- ``mbpp-full``: all 974 tasks of ``mbpp.jsonl``;
- ``mbpp-sanitized``: the 427 hand-checked tasks of ``sanitized-mbpp.json`` (all its splits).

Data, first found wins: the data directory (``mbpp/mbpp.jsonl``, ``mbpp/sanitized-mbpp.json``),
then, with ``allow_download``, the hub dataset ``google-research-datasets/mbpp`` (config ``full``
or ``sanitized``; for ``mbpp-full`` and ``mbpp-sanitized`` every split is read and ordered by task id).

Prompt and stop sequences follow bigcode-evaluation-harness ``bigcode_eval/tasks/mbpp.py``
(InCoder style, zero-shot): the description and the first test in a docstring,
``'\"\"\"\\n' + text + '\\n' + test_list[0] + '\\n\"\"\"\\n'``; generation stops at ``"\\nclass"``,
``"\\nassert"``, ``'\\n\"\"\"'``, ``"\\nprint"``, ``"\\nif"``, ``"\\n<|/"``, ``"\\n```"``. The solution
is the prompt plus the continuation (the docstring is a harmless expression statement).

With ``shots=k`` (the few-shot ablation) the prompt is preceded by k solved examples from the
prompt split (tasks 2, 3, 4, then 1, 5-10; never the problem itself), each in the same form:
the docstring then the reference code. The solution is still the problem's own prompt plus the
continuation; the examples are context only.

Test program: solution, ``test_setup_code`` (full MBPP; the harness drops it, which makes the few
tasks that need it fail even with their reference code) or ``test_imports`` (sanitized), then the
three asserts of ``test_list``. ``challenge_test_list`` is not used (neither does the harness).
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

from slmbench.data import DataSource, load_hub_dataset, read_json, read_jsonl, sha256_file, sha256_rows
from slmbench.errors import UserError, at
from slmbench.tasks.base import CompletionForm, Task
from slmbench.types import Completion, ExecLimits, ExecRequest, Problem

HUB_DATASET = "google-research-datasets/mbpp"
HUB_SPLITS = ("train", "test", "validation", "prompt")
TEST_IDS = range(11, 511)  # the README's test split
# The README's prompt split (ids 1-10) is MBPP's pool of few-shot examples; the paper's 3-shot
# prompt uses tasks 2, 3 and 4, so they come first.
SHOT_ORDER = (2, 3, 4, 1, 5, 6, 7, 8, 9, 10)

# bigcode-evaluation-harness bigcode_eval/tasks/mbpp.py (also mbppplus.py)
MBPP_STOP_SEQUENCES = ("\nclass", "\nassert", '\n"""', "\nprint", "\nif", "\n<|/", "\n```")


def mbpp_prompt(description: str, first_test: str) -> str:
    return f'"""\n{description}\n{first_test}\n"""\n'


def wrong_solution(reference_code: str, names: Sequence[str] | None = None) -> str:
    """A plausible wrong answer: the reference, with each top-level function redefined to return
    None. It compiles and defines every name the tests use, so it fails on the tests' assertions
    about values, not on a NameError."""
    if names is None:
        try:
            with warnings.catch_warnings():  # dataset code has "\w" in plain strings: not our concern here
                warnings.simplefilter("ignore")
                tree = ast.parse(reference_code)
        except SyntaxError:
            return reference_code + "\nraise AssertionError('wrong solution')\n"
        names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    lines = [reference_code.rstrip("\n"), ""]
    for name in names:
        lines += [f"def {name}(*args, **kwargs):", "    return None", ""]
    return "\n".join(lines)


def _text(row: dict[str, Any], key: str, where: object, lineno: int | None) -> str:
    value = row.get(key)
    if not isinstance(value, str):
        raise UserError(f"{at(where, lineno)}: field {key} must be a string", hint="is this an MBPP data file?")
    return value


def _str_list(row: dict[str, Any], key: str, where: object, lineno: int | None) -> list[str]:
    value = row.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError(
            f"{at(where, lineno)}: field {key} must be a list of strings", hint="is this an MBPP data file?"
        )
    return value


class MBPP(Task):
    name = "mbpp"
    languages = ("python",)
    description = "MBPP: 974 entry-level Python problems with 3 asserts each (Google, 2021)"
    default_stop_sequences: ClassVar[tuple[str, ...]] = MBPP_STOP_SEQUENCES
    offers_shots = True  # from its own pool: the prompt split (shot_examples)

    VARIANTS: ClassVar[dict[str, str]] = {"mbpp": "test", "mbpp-full": "full", "mbpp-sanitized": "sanitized"}

    def __init__(
        self,
        source: DataSource | None = None,
        *,
        stop_sequences: Sequence[str] | None = None,
        variant: str = "test",
        timeout_s: float | None = None,
    ) -> None:
        if variant not in ("test", "full", "sanitized"):
            raise UserError(f"unknown MBPP variant {variant!r}", hint="use test, full or sanitized")
        super().__init__(source, stop_sequences=stop_sequences)
        self.variant = variant
        self.name = {v: k for k, v in self.VARIANTS.items()}[variant]  # type: ignore[misc]
        self.timeout_s = timeout_s
        self.source_description: str | None = None
        # task number -> few-shot example text, from the prompt split (filled by load())
        self._shots: dict[int, str] | None = None

    @classmethod
    def for_name(cls, name: str, **kwargs: Any) -> MBPP:
        if name not in cls.VARIANTS:
            raise UserError(f"unknown MBPP task {name!r}", hint=f"use one of {', '.join(cls.VARIANTS)}")
        return cls(variant=cls.VARIANTS[name], **kwargs)

    # ---- data -------------------------------------------------------------------------
    def load(self) -> tuple[list[Problem], str]:
        sanitized = self.variant == "sanitized"
        rel = "mbpp/sanitized-mbpp.json" if sanitized else "mbpp/mbpp.jsonl"
        local = self.source.find(rel, rel + ".gz")
        if local is not None:
            self.source_description = f"data directory: {local}"
            if sanitized:
                data = read_json(local)
                if not isinstance(data, list):
                    raise UserError(f"{local}: expected a JSON array of tasks", hint="is this sanitized-mbpp.json?")
                rows: list[tuple[int | None, dict]] = [(None, r) for r in data]
            else:
                rows = list(read_jsonl(local))
            checksum = sha256_file(local)
            where: object = local
        elif self.source.allow_download:
            config = "sanitized" if sanitized else "full"
            splits = ("test",) if self.variant == "test" else HUB_SPLITS
            hub_rows = [
                r for s in splits for r in load_hub_dataset(HUB_DATASET, name=config, split=s, source=self.source)
            ]
            hub_rows.sort(key=lambda r: int(r["task_id"]))
            rows = [(None, r) for r in hub_rows]
            checksum = sha256_rows(hub_rows)
            where = f"hub:{HUB_DATASET}/{config}"
            self.source_description = f"hub: {HUB_DATASET} ({config})"
        else:
            raise UserError(
                f"MBPP data not found: no {rel} in {self.source.data_dir or '(no data directory)'}",
                hint="put mbpp.jsonl / sanitized-mbpp.json under <data-dir>/mbpp/, or pass --allow-download",
            )
        problems = []
        shots: dict[int, str] = {}
        for lineno, row in rows:
            if not isinstance(row, dict):
                raise UserError(f"{at(where, lineno)}: expected a JSON object per task")
            number = _task_number(row, where, lineno)
            if number in SHOT_ORDER:
                shots[number] = self._example(row, where, lineno)
            if self.variant == "test" and number not in TEST_IDS:
                continue
            problems.append(self._problem(row, where, lineno))
        # the hub's test split holds no prompt-split rows: those are read when first asked for
        self._shots = None if local is None and self.variant == "test" else shots
        if not problems:
            raise UserError(f"{where}: no MBPP problems found", hint="the file should hold MBPP's tasks")
        return problems, checksum

    def _problem(self, row: dict[str, Any], where: object, lineno: int | None) -> Problem:
        sanitized = self.variant == "sanitized"
        for key in ("task_id", "code", "test_list", "prompt" if sanitized else "text"):
            if key not in row:
                raise UserError(f"{at(where, lineno)}: missing field {key}", hint="is this an MBPP data file?")
        description = _text(row, "prompt" if sanitized else "text", where, lineno)
        tests = _str_list(row, "test_list", where, lineno)
        if not tests:
            raise UserError(f"{at(where, lineno)}: test_list is empty")
        if sanitized:
            setup = _str_list(row, "test_imports", where, lineno)
        else:
            setup = [_text(row, "test_setup_code", where, lineno) if row.get("test_setup_code") else ""]
        code = _text(row, "code", where, lineno).replace("\r\n", "\n")
        return Problem(
            task=self.name,
            problem_id=str(row["task_id"]),
            prompt=mbpp_prompt(description, tests[0]),
            language="python",
            reference=code,
            tests="\n".join(tests),
            meta={"setup": "\n".join(s for s in setup if s), "description": description},
        )

    # ---- generation -------------------------------------------------------------------
    def shot_examples(self, problem: Problem, shots: int) -> str:
        if shots <= 0:
            return ""
        examples = self._example_pool()
        chosen = [examples[i] for i in SHOT_ORDER if i in examples and str(i) != problem.problem_id][:shots]
        if len(chosen) < shots:
            raise UserError(
                f"task {self.name} has {len(chosen)} few-shot examples for problem {problem.problem_id}, "
                f"not {shots} (MBPP's prompt split, tasks 1-10)",
                hint=f"use --shots {len(chosen)} or fewer",
            )
        return "".join(chosen)

    def _example_pool(self) -> dict[int, str]:
        self.problems()
        if self._shots is None:
            config = "sanitized" if self.variant == "sanitized" else "full"
            rows = load_hub_dataset(HUB_DATASET, name=config, split="prompt", source=self.source)
            self._shots = {}
            for row in rows:
                number = _task_number(row, HUB_DATASET, None)
                if number in SHOT_ORDER:
                    self._shots[number] = self._example(row, HUB_DATASET, None)
        return self._shots

    def _example(self, row: dict[str, Any], where: object, lineno: int | None) -> str:
        """A solved example: the problem's prompt, then its reference code."""
        example = self._problem(row, where, lineno)
        return example.prompt + example.reference.strip("\n") + "\n\n"

    def reference_completion(self, problem: Problem) -> tuple[str, CompletionForm]:
        return problem.reference, "continuation"

    def postprocess(self, problem: Problem, completion: Completion, form: CompletionForm) -> str:
        if form == "program":
            return completion.text
        return problem.prompt + completion.text

    # ---- scoring ----------------------------------------------------------------------
    def program(self, problem: Problem, solution: str, limits: ExecLimits) -> ExecRequest:
        parts = [solution, problem.meta.get("setup", ""), problem.tests]
        return ExecRequest(key="", language="python", program="\n".join(p for p in parts if p) + "\n", limits=limits)

    def selftest_cases(self, problem: Problem) -> list[tuple[str, str, bool]]:
        ref = problem.prompt + problem.reference
        return [("canonical", ref, True), ("wrong", problem.prompt + wrong_solution(problem.reference), False)]


def _task_number(row: dict[str, Any], where: object, lineno: int | None) -> int:
    try:
        return int(row["task_id"])
    except (KeyError, TypeError, ValueError):
        raise UserError(
            f"{at(where, lineno)}: task_id must be MBPP's task number, found {row.get('task_id')!r}",
            hint="is this an MBPP data file?",
        ) from None
