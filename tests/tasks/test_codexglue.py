"""CodeXGLUE code-to-text: prompts/references as the BigCode harness builds them, BLEU over all samples."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from slmbench.data import DataSource, sha256_file
from slmbench.errors import UserError
from slmbench.metrics.bleu import smoothed_bleu, split_puncts
from slmbench.tasks import TASKS, create_task
from slmbench.tasks import codexglue as cx_module
from slmbench.tasks.base import ProblemOutcomes, SampleOutcome
from slmbench.tasks.codexglue import CodeXGLUE, python_prompt
from slmbench.types import Completion


@pytest.fixture(scope="module")
def ruby(data_dir: Path) -> CodeXGLUE:
    return create_task("codexglue-ruby", source=DataSource(data_dir=data_dir))


def ruby_rows(data_dir: Path) -> list[dict]:
    with gzip.open(data_dir / "codexglue_code_to_text" / "ruby_test.jsonl.gz", "rt") as f:
        return [json.loads(line) for line in f]


def test_six_languages_registered_as_text_tasks() -> None:
    for lang in ("python", "java", "javascript", "go", "php", "ruby"):
        t = create_task(f"codexglue-{lang}")
        assert TASKS.get(f"codexglue-{lang}") is CodeXGLUE and t.name == f"codexglue-{lang}" and t.kind == "text"
        assert t.stop_sequences == (('"""', "'''") if lang == "python" else ("\n",))
        assert t.headline_metrics([1]) == ["bleu", "bleu/best"]


def test_ruby_prompts_and_references_match_the_official_evaluator_sample(ruby: CodeXGLUE, data_dir: Path) -> None:
    problems = ruby.problems()
    assert len(problems) == 1261 and ruby.dataset_checksum() == sha256_file(
        data_dir / "codexglue_code_to_text" / "ruby_test.jsonl.gz"
    )
    rows = ruby_rows(data_dir)
    assert problems[0].prompt == rows[0]["code"] + "\n=begin The goal of this function is to:\n"
    # the evaluator README's reference.txt holds ruby test rows 0-4 as joined tokens; the harness
    # detokenises them (Moses), which changes spacing only: the BLEU tokens and scores are the same
    vectors = json.loads((data_dir / "codexglue_code_to_text" / "smoothed_bleu_test_vectors.json").read_text())
    sample = vectors["cases"][0]
    official = [sample["references"][str(i)] for i in range(5)]
    ours = [p.reference for p in problems[:5]]
    assert ours[0] == official[0] and ours[3] != official[3]
    assert [split_puncts(r) for r in ours] == [split_puncts(r) for r in official]
    preds = [sample["predictions"][str(i)] for i in range(5)]
    assert smoothed_bleu(ours, preds) == pytest.approx(sample["expected_smoothed_bleu4"], abs=1e-9)
    assert ruby.programs(problems[0], "anything") == {}


def test_python_prompt_cuts_the_docstring_out(data_dir: Path) -> None:
    t = create_task("codexglue-python", source=DataSource(data_dir=data_dir))
    p = t.problems()[0]
    assert len(t.problems()) == 130 and "partial sample" in t.source_description
    assert p.prompt.startswith("def sina_xml_to_url_list(xml_data):")
    assert "Convert XML to URL List" not in p.prompt and p.prompt.count('"""') == 1
    assert p.prompt.endswith('\n""" The goal of this function is to:\n')
    assert p.reference == "str - > list Convert XML to URL List. From Biligrab."
    code = "def f(x):\n    '''Add one.'''\n    return x + 1"
    assert python_prompt(code, "Add one.") == 'def f(x):\n    return x + 1\n""" The goal of this function is to:\n'


def test_postprocess_keeps_the_first_line_of_the_summary(ruby: CodeXGLUE) -> None:
    p = ruby.problems()[0]
    post = lambda text, form="continuation": ruby.postprocess(p, Completion(p.problem_id, 0, text), form)  # noqa: E731
    assert post("  Prints a summary.\nmore text") == "Prints a summary."
    # a generation that repeats the prompt (BigCode generations.json) is cut after the delimiter
    assert post(p.prompt + "Prints a summary.\n=end", "program") == "Prints a summary."
    assert post(p.reference, "program") == p.reference
    py = CodeXGLUE(language="python")
    assert py.postprocess(p, Completion("0", 0, ' Return x plus one.""" more'), "continuation") == "Return x plus one."


def test_scores_all_samples_mean_best_and_first(ruby: CodeXGLUE) -> None:
    problems = ruby.problems()[:3]
    texts = [["Prints a summary message", p.reference, ""] for p in problems]
    outcomes = [
        ProblemOutcomes(p, [SampleOutcome(i, t) for i, t in enumerate(ts)])
        for p, ts in zip(problems, texts, strict=True)
    ]
    scores = ruby.score(outcomes, [1], bootstrap=100)
    overall = {s.metric: s for s in scores if s.problem_id is None}
    refs = [p.reference for p in problems for _ in range(3)]
    preds = [t for ts in texts for t in ts]
    assert overall["bleu"].value == pytest.approx(smoothed_bleu(refs, preds), abs=1e-9)
    assert overall["bleu/best"].value == pytest.approx(100.0)
    firsts = smoothed_bleu([p.reference for p in problems], [ts[0] for ts in texts])
    assert overall["bleu/first"].value == pytest.approx(firsts, abs=1e-9)
    assert overall["bleu"].n_problems == 3 and overall["bleu"].n_samples == 9
    assert overall["bleu"].ci_low <= overall["bleu"].value <= overall["bleu"].ci_high
    per = [s for s in scores if s.problem_id == problems[0].problem_id and s.metric == "bleu/best"]
    assert len(per) == 1 and per[0].value == pytest.approx(100.0)


def test_selftest_cases_reference_scores_100_and_empty_does_not(ruby: CodeXGLUE) -> None:
    for p in ruby.problems()[:50]:
        cases = ruby.selftest_cases(p)
        assert [(label, should) for label, _, should in cases] == [("reference", True), ("empty", False)]
        for _, text, should in cases:
            assert ruby.selftest_passes(p, text) is should


def test_missing_data_and_hub_gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    with pytest.raises(UserError, match="CodeXGLUE go data not found"):
        create_task("codexglue-go", source=DataSource(data_dir=tmp_path)).problems()
    rows = ruby_rows(data_dir)[:2]
    seen = []

    def fake_hub(path, *, name=None, split, source):
        seen.append((path, name, split))
        return [dict(r, id=i) for i, r in enumerate(rows)]

    monkeypatch.setattr(cx_module, "load_hub_dataset", fake_hub)
    t = create_task("codexglue-go", source=DataSource(data_dir=tmp_path, allow_download=True))
    assert [p.problem_id for p in t.problems()] == ["0", "1"]
    assert seen == [("code_x_glue_ct_code_to_text", "go", "test")]
    assert t.problems()[0].prompt.endswith("\n/* The goal of this function is to:\n")


def test_malformed_row_names_file_and_line(tmp_path: Path, data_dir: Path) -> None:
    rows = ruby_rows(data_dir)[:2]
    del rows[1]["docstring_tokens"]
    folder = tmp_path / "codexglue_code_to_text"
    folder.mkdir()
    path = folder / "ruby_test.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(UserError, match=rf"{path}:2: missing field\(s\) docstring_tokens"):
        create_task("codexglue-ruby", source=DataSource(data_dir=tmp_path)).problems()
