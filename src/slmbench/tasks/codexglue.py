"""CodeXGLUE code-to-text (Lu et al., 2021): write the one-line summary of a function.

Six tasks, one class (:meth:`CodeXGLUE.for_name`): ``codexglue-{python,java,javascript,go,php,ruby}``,
the test splits of CodeSearchNet as CodeXGLUE filtered them. Scored by smoothed BLEU-4 exactly as
the official evaluator computes it (:mod:`slmbench.metrics.bleu`), on *every* sample:

- ``bleu``: mean sentence BLEU over all samples (mean over problems of each problem's mean);
- ``bleu/best``: best of the n samples per problem, averaged over problems;
- ``bleu/first``: sample 0 only, the figure the BigCode harness reports (it scores ``gen[0]``).

Data, first found wins: ``codexglue_code_to_text/<lang>_test.jsonl(.gz)`` (the official
``dataset/<lang>/test.jsonl``) in the data directory; for python also the shipped partial
``python_test_first130_sample.jsonl``; then, with ``allow_download``, the hub dataset
``code_x_glue_ct_code_to_text`` (config ``<lang>``, split ``test``). Problem ids are row indexes
(the hub's ``id``).

Prompts, stops, references and post-processing follow bigcode-evaluation-harness
``bigcode_eval/tasks/codexglue_code_to_text.py``:

- prompt: ``code`` + ``"\\n/* The goal of this function is to:\\n"`` (ruby: ``"\\n=begin The goal ..."``);
  python: the code with its docstring cut out, then ``'\\n\"\"\" The goal of this function is to:\\n'``;
- stops: ``'\"\"\"'`` and ``"'''"`` for python, ``"\\n"`` for the others;
- the summary is the first line of the continuation, stripped (text before the prompt's delimiter
  is dropped when a replayed generation includes the prompt);
- reference: ``" ".join(docstring_tokens)`` without newlines and without a leading ``r``,
  detokenised by the Moses detokenizer (English). The harness uses the ``mosestokenizer`` package
  (the Perl script); slmbench uses ``sacremoses`` (its Python port). They can differ in spacing
  around rare punctuation, which ``split_puncts`` removes again before BLEU.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from slmbench.data import DataSource, load_hub_dataset, read_jsonl, sha256_file, sha256_rows
from slmbench.errors import UserError, at
from slmbench.metrics.bleu import sentence_bleu
from slmbench.metrics.passk import metric_scores
from slmbench.tasks.base import CompletionForm, ProblemOutcomes, Task
from slmbench.types import Completion, Problem, Score

LANGUAGES = ("python", "java", "javascript", "go", "php", "ruby")
HUB_DATASET = "code_x_glue_ct_code_to_text"
TRIPLE_QUOTE = '"""'
SINGLE_TRIPLE_QUOTE = "'''"
SUFFIX = {
    "python": '\n""" The goal of this function is to:\n',
    "ruby": "\n=begin The goal of this function is to:\n",
    "other": "\n/* The goal of this function is to:\n",
}
_TRAILING_SINGLE_QUOTE = re.compile(r"[^'\"][']\s*$")
_TRAILING_DOUBLE_QUOTE = re.compile(r"[^'\"][\"]\s*$")
FIELDS = ("code", "docstring", "docstring_tokens")


def suffix_for(language: str) -> str:
    return SUFFIX.get(language, SUFFIX["other"])


def python_prompt(code: str, docstring: str) -> str:
    """The function with its docstring removed, then the harness's summary delimiter."""
    if docstring not in code:
        return code + SUFFIX["python"]
    start = code.index(docstring)
    prefix, rest = code[:start], code[start + len(docstring) :]
    for delim in (TRIPLE_QUOTE, SINGLE_TRIPLE_QUOTE):  # cut at the docstring's opening quotes
        if delim in prefix:
            prefix = prefix[: prefix.index(delim)]
            break
    for pattern in (_TRAILING_SINGLE_QUOTE, _TRAILING_DOUBLE_QUOTE):  # or a single-quoted one
        m = pattern.search(prefix)
        if m:
            prefix = prefix[: m.start()]
    rest = rest.replace(TRIPLE_QUOTE, "").replace(SINGLE_TRIPLE_QUOTE, "")
    prefix = prefix.strip().removesuffix(TRIPLE_QUOTE).strip().removesuffix(SINGLE_TRIPLE_QUOTE)
    return prefix + rest + SUFFIX["python"]


class CodeXGLUE(Task):
    name = "codexglue-python"
    kind = "text"
    languages = LANGUAGES
    description = "CodeXGLUE code-to-text: one-line function summaries scored by smoothed BLEU-4"

    def __init__(
        self,
        source: DataSource | None = None,
        *,
        stop_sequences: Sequence[str] | None = None,
        language: str = "python",
    ) -> None:
        if language not in LANGUAGES:
            raise UserError(f"unknown CodeXGLUE language {language!r}", hint=f"use one of {', '.join(LANGUAGES)}")
        if stop_sequences is None:
            stop_sequences = (TRIPLE_QUOTE, SINGLE_TRIPLE_QUOTE) if language == "python" else ("\n",)
        super().__init__(source, stop_sequences=stop_sequences)
        self.language = language
        self.name = f"codexglue-{language}"  # type: ignore[misc]
        self.source_description: str | None = None
        self._detok: Any = None

    @classmethod
    def for_name(cls, name: str, **kwargs: Any) -> CodeXGLUE:
        language = name.removeprefix("codexglue-")
        return cls(language=language, **kwargs)

    # ---- data -------------------------------------------------------------------------
    def load(self) -> tuple[list[Problem], str]:
        lang = self.language
        names = [f"codexglue_code_to_text/{lang}_test.jsonl", f"codexglue_code_to_text/{lang}_test.jsonl.gz"]
        if lang == "python":
            names.append("codexglue_code_to_text/python_test_first130_sample.jsonl")
        local = self.source.find(*names)
        if local is not None:
            partial = " (partial sample)" if "sample" in local.name else ""
            self.source_description = f"data directory: {local}{partial}"
            problems = [self._problem(i, row, local, lineno) for i, (lineno, row) in enumerate(read_jsonl(local))]
            if not problems:
                raise UserError(f"{local}: no rows", hint="expected CodeXGLUE code-to-text test rows")
            return problems, sha256_file(local)
        if self.source.allow_download:
            rows = load_hub_dataset(HUB_DATASET, name=lang, split="test", source=self.source)
            self.source_description = f"hub: {HUB_DATASET}/{lang} (test)"
            where = f"hub:{HUB_DATASET}/{lang}"
            return [self._problem(int(r.get("id", i)), r, where, None) for i, r in enumerate(rows)], sha256_rows(rows)
        raise UserError(
            f"CodeXGLUE {lang} data not found: none of {', '.join(names)} in "
            f"{self.source.data_dir or '(no data directory)'}",
            hint="put the official <lang>/test.jsonl there as <lang>_test.jsonl, or pass --allow-download",
        )

    def _problem(self, index: int, row: dict[str, Any], where: object, lineno: int | None) -> Problem:
        missing = [f for f in FIELDS if f not in row]
        if missing:
            raise UserError(f"{at(where, lineno)}: missing field(s) {', '.join(missing)}", hint=f"rows need {FIELDS}")
        tokens = row["docstring_tokens"]
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise UserError(f"{at(where, lineno)}: docstring_tokens must be a list of strings")
        code, docstring = str(row["code"]), str(row["docstring"])
        prompt = python_prompt(code, docstring) if self.language == "python" else code + suffix_for(self.language)
        return Problem(
            task=self.name,
            problem_id=str(index),
            prompt=prompt,
            language=self.language,
            entry_point=str(row.get("func_name", "")),
            reference=self.reference_summary(tokens),
            meta={"url": row.get("url", ""), "repo": row.get("repo", "")},
        )

    def reference_summary(self, docstring_tokens: Sequence[str]) -> str:
        text = " ".join(docstring_tokens).replace("\n", "")
        if text.startswith("r"):  # r""" docstrings kept their r in tokenisation (harness quirk, kept)
            text = text[1:]
        if self._detok is None:
            from sacremoses import MosesDetokenizer

            self._detok = MosesDetokenizer(lang="en")
        return self._detok.detokenize(text.strip().split())

    # ---- generation -------------------------------------------------------------------
    def reference_completion(self, problem: Problem) -> tuple[str, CompletionForm]:
        return problem.reference, "program"

    def postprocess(self, problem: Problem, completion: Completion, form: CompletionForm) -> str:
        text = completion.text
        delim = suffix_for(self.language)
        if delim in text:  # a generation that repeats the prompt (BigCode generations.json)
            text = text.split(delim, 1)[1]
        for stop in self.stop_sequences:
            if stop and stop != "\n" and stop in text:
                text = text[: text.index(stop)]
        text = text.strip()
        return text.split("\n", 1)[0].strip() if text else ""

    # ---- scoring ----------------------------------------------------------------------
    def sample_bleu(self, problem: Problem, summary: str) -> float:
        """Smoothed BLEU-4 of one summary against the problem's reference, in percent."""
        return 100.0 * sentence_bleu([problem.reference.split("\t", 1)[0]], summary.split("\t", 1)[0])

    def score(
        self, outcomes: Sequence[ProblemOutcomes], ks: Sequence[int], bootstrap: int, seed: int = 0
    ) -> list[Score]:
        rows = []
        for po in outcomes:
            if not po.samples:
                continue
            ordered = sorted(po.samples, key=lambda s: s.sample)
            values = [self.sample_bleu(po.problem, s.solution) for s in ordered]
            rows.append((po.problem.problem_id, values))
        if not rows:
            return []
        scores: list[Score] = []
        for metric, reduce in (("bleu", np.mean), ("bleu/best", np.max), ("bleu/first", lambda v: v[0])):
            per_problem = [(pid, float(reduce(v)), len(v)) for pid, v in rows]
            scores += metric_scores(metric, per_problem, bootstrap=bootstrap, seed=seed)
        return scores

    def headline_metrics(self, ks: Sequence[int]) -> list[str]:
        return ["bleu", "bleu/best"]

    # ---- selftest ---------------------------------------------------------------------
    def selftest_cases(self, problem: Problem) -> list[tuple[str, str, bool]]:
        """Text task: nothing runs. ``should_pass`` means "BLEU against the reference is 100";
        check each case with :meth:`selftest_passes`."""
        return [("reference", problem.reference, True), ("empty", "", False)]

    def selftest_passes(self, problem: Problem, solution: str) -> bool:
        return self.sample_bleu(problem, solution) >= 100.0 - 1e-9
