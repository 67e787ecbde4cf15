"""Smoothed sentence-level BLEU-4, as the official CodeXGLUE code-to-text evaluator computes it.

Written from the description of microsoft/CodeXGLUE ``Code-Text/code-to-text/evaluator/evaluator.py``
(the same algorithm bigcode-evaluation-harness ships as ``codexglue_code_to_text_bleu.py``):

1. each string is stripped, lower-cased and re-tokenised as runs of word characters or single
   other non-space characters (``split_puncts``);
2. then the NIST mteval-v11a normalisation runs on top (``nist_tokens``);
3. n-grams n = 1..4, candidate counts clipped by the largest count in any reference;
   the effective reference length is the shortest reference;
4. add-one smoothing for n >= 2 (numerator and denominator), ``sys.float_info.min`` inside every
   log, brevity penalty ``min(0, 1 - (reflen + 1) / (candlen + 1))`` in log space;
5. BLEU per example; the reported figure is the arithmetic mean over examples times 100.

Consequences worth knowing: an empty prediction scores ``exp(-reflen)`` (not 0), an exact match
scores 100, and case and punctuation spacing do not matter.
"""

from __future__ import annotations

import math
import re
import sys
from collections import Counter
from collections.abc import Sequence
from xml.sax.saxutils import unescape

MAX_N = 4
_TINY = sys.float_info.min  # keeps log() finite when nothing matches

_WORD_OR_PUNCT = re.compile(r"\w+|[^\s\w]")
# mteval-v11a: spaces around ASCII punctuation ({|}~ [\]^_` space!"#$%& ()*+ :;<=>?@ /)
_NIST_STEPS = (
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),  # split . and , unless preceded by a digit
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),  # ... or followed by one
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),  # a dash after a digit
)


def split_puncts(text: str) -> str:
    """The evaluator's pre-tokenisation: strip, lower-case, words and single punctuation marks."""
    return " ".join(_WORD_OR_PUNCT.findall(text.strip().lower()))


def nist_tokens(text: str) -> list[str]:
    """mteval-v11a normalisation (applied by the BLEU routine itself), then whitespace split."""
    text = text.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    text = unescape(text, {"&quot;": '"'})
    text = f" {text} ".lower()
    for pattern, repl in _NIST_STEPS:
        text = pattern.sub(repl, text)
    return text.split()


def _ngrams(tokens: Sequence[str]) -> Counter[tuple[str, ...]]:
    counts: Counter[tuple[str, ...]] = Counter()
    for n in range(1, MAX_N + 1):
        for i in range(len(tokens) - n + 1):
            counts[tuple(tokens[i : i + n])] += 1
    return counts


def sentence_bleu(references: Sequence[str], prediction: str) -> float:
    """Smoothed BLEU-4 of one prediction against its reference(s), in [0, 1].

    Inputs are raw strings; both go through :func:`split_puncts` first, as in the evaluator.
    """
    if not references:
        raise ValueError("sentence_bleu needs at least one reference")
    ref_tokens = [nist_tokens(split_puncts(r)) for r in references]
    max_ref_counts: Counter[tuple[str, ...]] = Counter()
    for toks in ref_tokens:
        for gram, count in _ngrams(toks).items():
            if count > max_ref_counts[gram]:
                max_ref_counts[gram] = count
    ref_len = min(len(t) for t in ref_tokens)  # "shortest"

    test = nist_tokens(split_puncts(prediction))
    guess = [max(len(test) - k + 1, 0) for k in range(1, MAX_N + 1)]
    correct = [0] * MAX_N
    for gram, count in _ngrams(test).items():
        correct[len(gram) - 1] += min(max_ref_counts.get(gram, 0), count)

    log_bleu = 0.0
    for k in range(MAX_N):
        add = 1 if k > 0 else 0  # Lin & Och add-one smoothing, not for unigrams
        log_bleu += math.log(correct[k] + add + _TINY) - math.log(guess[k] + add + _TINY)
    log_bleu /= MAX_N
    log_bleu += min(0.0, 1.0 - (ref_len + 1) / (len(test) + 1))
    return math.exp(log_bleu)


def _first_field(text: str) -> str:
    # The evaluator reads "id<TAB>text" lines: text after a tab never reaches it. It strips the
    # line first, so a leading tab does not empty the text.
    return text.strip().split("\t", 1)[0]


def sentence_scores(references: Sequence[str], predictions: Sequence[str]) -> list[float]:
    """Per-example smoothed BLEU-4 in percent (one reference per prediction)."""
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} references but {len(predictions)} predictions: need one each")
    return [
        100.0 * sentence_bleu([_first_field(r)], _first_field(p)) for r, p in zip(references, predictions, strict=True)
    ]


def smoothed_bleu(references: Sequence[str], predictions: Sequence[str]) -> float:
    """The CodeXGLUE code-to-text score: mean sentence-level smoothed BLEU-4, in percent.

    ``references[i]`` is the reference summary of ``predictions[i]``. Returns 0.0 for no input.
    """
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} references but {len(predictions)} predictions: need one each")
    if not predictions:
        return 0.0
    # Same order of operations as the evaluator (sum of fractions, then * 100 / count), so that
    # results agree to the last bits rather than merely to rounding.
    total = 0.0
    for r, p in zip(references, predictions, strict=True):
        total += sentence_bleu([_first_field(r)], _first_field(p))
    return total * 100.0 / len(predictions)
