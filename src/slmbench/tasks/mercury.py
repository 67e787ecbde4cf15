"""Mercury (Du et al., 2024): LeetCode-style problems scored on correctness *and* speed.

Task ``mercury``: the hub dataset ``Elfsong/Mercury``, split ``eval`` (256 problems), or a local
copy in the hub's schema (``--data-dir``: ``mercury/Mercury_eval.jsonl(.gz)`` or
``mercury/eval.jsonl(.gz)``, one row per problem). Fields used: ``slug_name``, ``difficulty``,
``pretty_content`` (``[0]`` is the statement), ``prompt`` (the ``class Solution`` starter code),
``entry_point`` (the method), ``test_cases`` (a JSON string: ``[{"input": [...], "expected": ...}]``),
``convert_offline`` / ``evaluate_offline`` (code defining ``convert_offline((inputs, expected))``
and ``evaluate_offline(inputs, outputs, expected)``) and ``solutions`` (``[{"solution", "runtime"}]``;
the dataset's ``runtime`` values are not used: references are re-measured here).

Prompt and stops follow bigcode-evaluation-harness ``bigcode_eval/tasks/mercury.py``: the model
sees ``"'''" + pretty_content[0] + "'''\\n" + prompt`` and generation stops at ``"\\nclass"``,
``"\\ndef"``, ``"\\n#"``, ``"\\n@"``, ``"\\nprint"``, ``"\\nif"``, ``"\\n```"``, ``"<file_sep>"``,
``"<｜end▁of▁sentence｜>"``. The solution is the prompt plus the continuation (the harness keeps
only the continuation, which cannot define ``class Solution`` for a base model; we keep the
starter code).

The test program mirrors the harness sandbox's namespace (the usual imports, ``ListNode``,
``TreeNode``, a silent ``print``), then runs every test case ``repeats`` times (default 3),
each through ``convert_offline`` and ``evaluate_offline`` on fresh copies of the case.

Runtime is the **CPU time** of that run (``ExecResult.cpu_s``, measured by the executor from the
child's rusage, not reported by the sample) divided by ``repeats``. Reference solutions are timed
the same way, on the same machine, through the same executor, and cached per machine and dataset
(``$SLMBENCH_CACHE`` or ``~/.cache/slmbench``, ``mercury/<fingerprint>.json``). Instruction counts
(``perf stat``) are not used: perf events are rarely available inside containers and sandboxes.
Metrics: ``pass@k`` and ``beyond@k`` (:mod:`slmbench.metrics.beyond`, where the formula and its
differences from the original Mercury code and the BigCode harness are documented).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from slmbench.data import DataSource, cache_root, load_hub_dataset, read_jsonl, sha256_file, sha256_rows
from slmbench.environment import machine_fingerprint
from slmbench.errors import UserError, at
from slmbench.metrics.beyond import beyond_scores, beyond_value
from slmbench.metrics.passk import passk_scores
from slmbench.tasks.base import DEFAULT_SUITE, CompletionForm, ProblemOutcomes, Task
from slmbench.tasks.humaneval import HumanEval
from slmbench.types import Completion, ExecLimits, ExecRequest, Problem, Score

HUB_DATASET = "Elfsong/Mercury"
HUB_SPLIT = "eval"
DATA_DIR_FILES = (
    "mercury/Mercury_eval.jsonl",
    "mercury/Mercury_eval.jsonl.gz",
    "mercury/eval.jsonl",
    "mercury/eval.jsonl.gz",
)
FIELDS = (
    "slug_name",
    "pretty_content",
    "prompt",
    "entry_point",
    "test_cases",
    "convert_offline",
    "evaluate_offline",
    "solutions",
)
DEFAULT_REPEATS = 3
RUN_TIMEOUT_S = 10.0  # per repetition; the harness's sandbox timeout
PROGRAM_VERSION = "1"  # bump when the test program changes: it invalidates cached reference times

# What the harness's sandbox namespace provides before the solution runs.
PREAMBLE = """\
import re, itertools, collections, heapq, bisect, string, sys, functools, math, copy
from math import floor, ceil, factorial, sqrt, inf
from sys import maxsize, stdin
from bisect import bisect_left, bisect_right
from itertools import permutations, zip_longest
from heapq import heappush, heappop, heapify
from collections import deque, defaultdict, OrderedDict, Counter
from typing import List, Optional, Tuple, Dict, Set
from functools import lru_cache, cache
try:
    import sortedcontainers
    from sortedcontainers import SortedList, SortedDict, SortedSet
except ImportError:
    pass


class ListNode(object):
    def __init__(self, val=0, next=None):
        self.val = val
        self.next = next


class TreeNode(object):
    def __init__(self, val=0, left=None, right=None):
        self.val = val
        self.left = left
        self.right = right


def print(*args, **kwargs):
    pass

"""

RUNNER = """

def _slmbench_mercury_run(_cases, _entry_point, _repeats):
    import copy as _copy
    import json as _json

    cases = _json.loads(_cases)
    for _ in range(_repeats):
        solution = Solution()
        method = getattr(solution, _entry_point)
        for i, case in enumerate(cases):
            inputs, expected = convert_offline((_copy.deepcopy(case["input"]), _copy.deepcopy(case["expected"])))
            outputs = method(*inputs)
            if not evaluate_offline(inputs, outputs, expected):
                raise AssertionError(f"test case #{i}: wrong output")


"""


class Mercury(Task):
    name = "mercury"
    languages = ("python",)
    description = "Mercury: LeetCode problems, correctness (pass@k) and efficiency (Beyond@k) (Du et al., 2024)"
    # the BigCode harness's HumanEval stop words plus DeepSeek's end-of-sentence token
    default_stop_sequences: ClassVar[tuple[str, ...]] = HumanEval.default_stop_sequences + ("<｜end▁of▁sentence｜>",)

    def __init__(
        self,
        source: DataSource | None = None,
        *,
        stop_sequences: Sequence[str] | None = None,
        repeats: int = DEFAULT_REPEATS,
        executor: Any | None = None,
        workers: int = 0,
        sandbox: str = "default",
        cache_dir: Path | str | None = None,
    ) -> None:
        if repeats < 1:
            raise UserError(f"Mercury repeats must be at least 1, got {repeats}")
        super().__init__(source, stop_sequences=stop_sequences)
        self.repeats = repeats
        self.executor = executor  # for timing reference solutions; None: one is made when needed
        self.workers = workers
        self.sandbox = sandbox
        self.cache_dir = Path(cache_dir) if cache_dir is not None else cache_root()
        self.source_description: str | None = None
        self._ref_times: dict[str, list[float]] | None = None

    # ---- data -------------------------------------------------------------------------
    def load(self) -> tuple[list[Problem], str]:
        local = self.source.find(*DATA_DIR_FILES)
        if local is not None:
            self.source_description = f"data directory: {local}"
            problems = [self._problem(row, local, lineno) for lineno, row in read_jsonl(local)]
            if not problems:
                raise UserError(f"{local}: no problems in the file", hint="one JSON object per Mercury problem")
            return problems, sha256_file(local)
        if self.source.allow_download:
            rows = load_hub_dataset(HUB_DATASET, split=HUB_SPLIT, source=self.source)
            self.source_description = f"hub: {HUB_DATASET} ({HUB_SPLIT})"
            return [self._problem(r, f"hub:{HUB_DATASET}", i + 1) for i, r in enumerate(rows)], sha256_rows(rows)
        raise UserError(
            f"Mercury data not found: none of {', '.join(DATA_DIR_FILES)} in "
            f"{self.source.data_dir or '(no data directory)'}",
            hint=f"pass --allow-download to load {HUB_DATASET} ({HUB_SPLIT}), or export it as JSON lines "
            "to <data-dir>/mercury/Mercury_eval.jsonl",
        )

    def _problem(self, row: dict[str, Any], where: object, lineno: int | None) -> Problem:
        missing = [f for f in FIELDS if f not in row]
        if missing:
            raise UserError(
                f"{at(where, lineno)}: missing field(s) {', '.join(missing)}",
                hint="rows need the Elfsong/Mercury hub schema",
            )
        content = row["pretty_content"]
        statement = content[0] if isinstance(content, list) and content else content
        if not isinstance(statement, str):
            raise UserError(f"{at(where, lineno)}: pretty_content must be a list of strings")
        cases = row["test_cases"]
        try:
            parsed = json.loads(cases) if isinstance(cases, str) else cases
        except json.JSONDecodeError as exc:
            raise UserError(f"{at(where, lineno)}: test_cases is not valid JSON ({exc.msg})") from None
        if not isinstance(parsed, list) or not all(isinstance(c, dict) and "input" in c for c in parsed):
            raise UserError(f"{at(where, lineno)}: test_cases must be a list of {{input, expected}} objects")
        solutions = row["solutions"]
        if not isinstance(solutions, list) or not all(isinstance(s, dict) and "solution" in s for s in solutions):
            raise UserError(f"{at(where, lineno)}: solutions must be a list of {{solution, runtime}} objects")
        if not solutions:
            raise UserError(f"{at(where, lineno)}: no reference solutions", hint="Beyond@k needs at least one")
        starter = str(row["prompt"])
        return Problem(
            task=self.name,
            problem_id=str(row["slug_name"]),
            prompt=f"'''{statement}'''\n{starter}",
            language="python",
            entry_point=str(row["entry_point"]),
            reference=str(solutions[0]["solution"]),
            tests=json.dumps(parsed),
            meta={
                "difficulty": row.get("difficulty", ""),
                "starter": starter,
                "convert_offline": str(row["convert_offline"]),
                "evaluate_offline": str(row["evaluate_offline"]),
                "solutions": [str(s["solution"]) for s in solutions],
            },
        )

    # ---- generation -------------------------------------------------------------------
    def reference_completion(self, problem: Problem) -> tuple[str, CompletionForm]:
        return problem.reference, "program"

    def postprocess(self, problem: Problem, completion: Completion, form: CompletionForm) -> str:
        if form == "program":
            return completion.text
        return problem.prompt + completion.text

    # ---- scoring ----------------------------------------------------------------------
    def limits(self, problem: Problem) -> ExecLimits:
        return ExecLimits(timeout_s=RUN_TIMEOUT_S * self.repeats)

    def program(self, problem: Problem, solution: str, limits: ExecLimits) -> ExecRequest:
        text = "\n".join(
            (
                PREAMBLE,
                solution,
                "",
                problem.meta["convert_offline"],
                "",
                problem.meta["evaluate_offline"],
                RUNNER,
                f"_slmbench_mercury_run({problem.tests!r}, {problem.entry_point!r}, {self.repeats})",
                "",
            )
        )
        return ExecRequest(key="", language="python", program=text, limits=limits)

    def runtime(self, result: Any) -> float:
        """CPU seconds of one repetition of the test cases."""
        return result.cpu_s / self.repeats

    def reference_cache_path(self) -> Path:
        key = "\n".join((machine_fingerprint(), self.dataset_checksum(), str(self.repeats), PROGRAM_VERSION))
        return self.cache_dir / "mercury" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"

    def reference_runtimes(self, problems: Sequence[Problem] | None = None) -> dict[str, list[float]]:
        """Runtimes of each problem's passing reference solutions, measured here (and cached)."""
        problems = list(problems) if problems is not None else self.problems()
        path = self.reference_cache_path()
        if self._ref_times is None:
            self._ref_times = {}
            if path.is_file():
                try:
                    loaded = json.loads(path.read_text())
                    if isinstance(loaded, dict):
                        self._ref_times = {str(k): [float(x) for x in v] for k, v in loaded.items()}
                except (OSError, ValueError, TypeError):
                    self._ref_times = {}  # damaged cache: measure again
        todo = [p for p in problems if p.problem_id not in self._ref_times]
        if todo:
            self._ref_times.update(self._measure_references(todo))
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(self._ref_times, sort_keys=True))
            os.replace(tmp, path)
        return {p.problem_id: self._ref_times[p.problem_id] for p in problems}

    def _measure_references(self, problems: Sequence[Problem]) -> dict[str, list[float]]:
        import dataclasses

        requests = []
        for p in problems:
            for i, code in enumerate(p.meta["solutions"]):
                req = self.program(p, code, self.limits(p))
                # distinct keys; identical reference programs are deduplicated by the executor
                requests.append(dataclasses.replace(req, key=f"{p.problem_id}\x1f{i}"))
        times: dict[str, list[float]] = {p.problem_id: [] for p in problems}
        owned = self.executor is None
        executor = self.executor
        if executor is None:
            from slmbench.execution.pool import Executor

            executor = Executor(workers=self.workers, sandbox=self.sandbox, dedupe=False)
        try:
            for result in executor.run(requests):
                pid, _ = result.key.split("\x1f")
                if result.passed:
                    times[pid].append(self.runtime(result))
        finally:
            if owned:
                executor.close()
        return times

    def score(
        self, outcomes: Sequence[ProblemOutcomes], ks: Sequence[int], bootstrap: int, seed: int = 0
    ) -> list[Score]:
        scores = passk_scores(outcomes, ks, bootstrap=bootstrap, seed=seed, suite=DEFAULT_SUITE)
        with_samples = [po for po in outcomes if po.samples]
        refs = self.reference_runtimes([po.problem for po in with_samples]) if with_samples else {}
        per_problem = []
        for po in with_samples:
            ref = refs.get(po.problem.problem_id) or []
            values = []
            for s in sorted(po.samples, key=lambda s: s.sample):
                result = s.results.get(DEFAULT_SUITE)
                runtime = self.runtime(result) if result is not None and result.passed else None
                values.append(beyond_value(runtime, ref))
            per_problem.append((po.problem.problem_id, values))
        return scores + beyond_scores(per_problem, ks, bootstrap=bootstrap, seed=seed)

    def headline_metrics(self, ks: Sequence[int]) -> list[str]:
        return [name for k in ks for name in (f"pass@{k}", f"beyond@{k}")]

    def selftest_cases(self, problem: Problem) -> list[tuple[str, str, bool]]:
        cases = [(f"reference#{i}", code, True) for i, code in enumerate(problem.meta["solutions"])]
        wrong = problem.meta["starter"].rstrip() + "\n        return None\n"
        cases.append(("wrong", wrong, False))
        return cases
