"""Smoothed BLEU-4: the official CodeXGLUE evaluator's numbers, to 1e-9."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from slmbench.metrics.bleu import nist_tokens, sentence_bleu, sentence_scores, smoothed_bleu, split_puncts


def vector_cases(data_dir: Path) -> list[dict]:
    path = data_dir / "codexglue_code_to_text" / "smoothed_bleu_test_vectors.json"
    return json.loads(path.read_text())["cases"]


def test_every_official_test_vector_matches_to_1e_9(data_dir: Path) -> None:
    cases = vector_cases(data_dir)
    assert len(cases) == 6
    for case in cases:
        ids = list(case["predictions"])
        got = smoothed_bleu([case["references"][i] for i in ids], [case["predictions"][i] for i in ids])
        assert got == pytest.approx(case["expected_smoothed_bleu4"], abs=1e-9), case["name"]


def test_readme_sample_is_the_mean_of_sentence_scores(data_dir: Path) -> None:
    case = next(c for c in vector_cases(data_dir) if c["name"] == "codexglue_official_evaluator_example")
    refs = [case["references"][i] for i in sorted(case["references"])]
    preds = [case["predictions"][i] for i in sorted(case["predictions"])]
    per = sentence_scores(refs, preds)
    assert len(per) == 5 and all(0 < s < 100 for s in per)
    assert sum(per) / 5 == pytest.approx(9.554726113590661, abs=1e-9)


def test_edge_cases_documented_by_the_evaluator() -> None:
    ref = "Returns the sum of two numbers ."
    assert smoothed_bleu([ref], [ref]) == pytest.approx(100.0, abs=1e-9)
    # an empty prediction is exp(-reflen), not 0: 7 tokens here
    assert smoothed_bleu([ref], [""]) == pytest.approx(100 * math.exp(-7), abs=1e-12)
    # case and punctuation spacing do not matter
    assert smoothed_bleu([ref], ["RETURNS the sum of two numbers."]) == pytest.approx(100.0, abs=1e-9)
    assert smoothed_bleu([], []) == 0.0
    # a wrong summary scores far lower than a close one
    assert smoothed_bleu([ref], ["Returns the sum of numbers ."]) > smoothed_bleu([ref], ["Opens a socket"]) + 20


def test_tokenisation_steps() -> None:
    assert split_puncts("  Hello, World!It's  ") == "hello , world ! it ' s"
    # "-" is split only after a digit; "." only when not between digits; XML entities unescaped
    tokens = nist_tokens("a-b 1.5 x.y 3-4 &quot;q&quot;")
    assert tokens == ["a-b", "1.5", "x", ".", "y", "3", "-", "4", '"', "q", '"']


def test_several_references_clip_by_the_best_and_use_the_shortest_length() -> None:
    one = sentence_bleu(["the cat sat on the mat"], "the cat sat on the mat")
    two = sentence_bleu(["a dog", "the cat sat on the mat"], "the cat sat on the mat")
    assert one == pytest.approx(1.0)
    assert two == pytest.approx(1.0)  # shortest reference is shorter than the prediction: no penalty


def test_lengths_must_match_and_tabs_cut_like_the_evaluator_file_format() -> None:
    with pytest.raises(ValueError, match="need one each"):
        smoothed_bleu(["a"], ["a", "b"])
    assert smoothed_bleu(["open a file"], ["open a file\tand then some"]) == pytest.approx(100.0)


def test_text_is_stripped_before_the_tab_cut_as_the_evaluator_does() -> None:
    """The harness strips, then cuts at a tab: a leading tab or space-and-tab kept the text; we
    used to cut first and score an empty prediction (exp(-reflen) instead of 100)."""
    assert smoothed_bleu(["open a file"], ["\topen a file"]) == pytest.approx(100.0)
    assert smoothed_bleu([" \topen a file"], ["open a file\t"]) == pytest.approx(100.0)
    assert sentence_scores(["open a file"], ["  \topen a file\tmore"]) == [pytest.approx(100.0)]
