"""Studies: the study file, planning, running only missing pairs (each model loaded once), reports."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from tests.fakes import CountingTask, FakeExecutor

from slmbench import study
from slmbench.backends.base import Backend, BackendInfo, GenerationRequest
from slmbench.errors import UserError
from slmbench.spec import DecodingSpec
from slmbench.store import Store
from slmbench.types import Completion, Usage


class QualityBackend(Backend):
    """Sample s of problem P/i is GOOD when (i + s + seed) % period == 0 (period from the model args)."""

    name = "quality"

    def __init__(self, period: int, params: int, log: list[tuple[str, str, int]]) -> None:
        super().__init__(f"q{period}")
        self.period, self.params, self.log = period, params, log

    def generate(self, requests: Sequence[GenerationRequest], decoding: DecodingSpec) -> Iterator[Completion]:
        for req in requests:
            i = int(req.problem.problem_id.split("/")[1])
            for s in req.samples:
                self.log.append((self.target, req.problem.problem_id, s))
                text = "GOOD" if (i + s + decoding.seed) % self.period == 0 else "BAD"
                usage = Usage(completion_tokens=4, latency_s=0.5, peak_memory_bytes=self.params * 2)
                yield Completion(req.problem.problem_id, s, text, usage=usage)

    def info(self) -> BackendInfo:
        return BackendInfo(backend="quality", model=self.target, parameters=self.params, device="cpu")


class Harness:
    def __init__(self) -> None:
        self.loads: list[str] = []
        self.generated: list[tuple[str, str, int]] = []
        self.executor = FakeExecutor()

    def backend(self, model: study.ModelSpec, spec) -> Backend:
        self.loads.append(model.name)
        return QualityBackend(int(spec.model_args["period"]), int(spec.model_args["params"]), self.generated)

    def run(self, path: Path, **kw):
        return study.run_study(
            path,
            quiet=True,
            backend_factory=self.backend,
            task_factory=lambda spec: CountingTask(),
            executor=self.executor,
            **kw,
        )


MODEL = """
[[models]]
name = "{name}"
model = "quality"
args = {{ period = {period}, params = {params} }}
"""


def _write(tmp_path: Path, models: list[tuple[str, int, int]], extra: str = "") -> Path:
    text = 'name = "fake study"\ntasks = ["count-a", "count-b"]\nn = 3\nk = [1, 2]\nbootstrap = 50\noutput = "out"\n'
    text += f"[decoding]\nseed = 0\n{extra}\n"
    text += "".join(MODEL.format(name=n, period=p, params=q) for n, p, q in models)
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


def test_each_model_is_loaded_once_for_all_its_tasks(tmp_path: Path) -> None:
    h = Harness()
    path = _write(tmp_path, [("small", 3, 1_000_000), ("large", 1, 9_000_000_000)])
    summary = h.run(path, report=False)
    assert h.loads == ["small", "large"]
    assert summary.runs == 4 and summary.ran == 4 and summary.skipped == 0
    assert len(h.generated) == 2 * 2 * 5 * 3 == summary.generated  # models x tasks x problems x n
    assert (tmp_path / "out" / "study.db").is_file()


def test_rerun_does_nothing_and_adding_a_model_runs_only_its_pairs(tmp_path: Path) -> None:
    h = Harness()
    path = _write(tmp_path, [("small", 3, 1_000_000), ("large", 1, 9_000_000_000)])
    h.run(path, report=False)
    again = Harness()
    summary = again.run(path, report=False)
    assert again.loads == [] and again.generated == [] and again.executor.ran == []
    assert summary.skipped == 4 and summary.ran == 0
    path = _write(tmp_path, [("small", 3, 1_000_000), ("large", 1, 9_000_000_000), ("mid", 2, 3_000_000_000)])
    more = Harness()
    summary = more.run(path, report=False)
    assert more.loads == ["mid"]
    assert {g[0] for g in more.generated} == {"q2"} and len(more.generated) == 2 * 5 * 3
    assert len(more.executor.ran) == 2 * 5 * 3
    assert summary.skipped == 4 and summary.ran == 2


def test_a_model_whose_pairs_are_done_is_never_loaded_even_if_rescored(tmp_path: Path) -> None:
    h = Harness()
    path = _write(tmp_path, [("small", 3, 1_000_000)])
    h.run(path, report=False)
    # a larger n needs new samples: the model is loaded once and only the new samples are made
    path.write_text(path.read_text().replace("n = 3", "n = 4"))
    h2 = Harness()
    h2.run(path, report=False)
    assert h2.loads == ["small"] and {s for _, _, s in h2.generated} == {3}


def test_report_from_the_store(tmp_path: Path) -> None:
    h = Harness()
    path = _write(tmp_path, [("small", 3, 1_000_000), ("large", 1, 9_000_000_000), ("mid", 2, 3_000_000_000)])
    summary = h.run(path)
    files = summary.report
    out = tmp_path / "out"
    assert files.html == out / "report.html" and files.html.is_file()
    ranking = json.loads((out / "tables" / "ranking_count_a.json").read_text())
    rows = {r["model"]: r for r in ranking["rows"]}
    assert [r["model"] for r in ranking["rows"]] == ["large", "mid", "small"]
    assert rows["large"]["pass@1"] == 1.0  # period 1: every sample GOOD
    # small: period 3 over n=3 samples -> exactly one GOOD sample per problem
    assert rows["small"]["pass@1"] == pytest.approx(1 / 3)
    models = {r["model"]: r for r in json.loads((out / "tables" / "models.json").read_text())["rows"]}
    assert models["large"]["parameters"] == 9e9 and models["large"]["parameters_source"] == "detected"
    assert models["small"]["group"].startswith("Group 1") and models["large"]["group"].startswith("Group 3")
    eff = {r["model"]: r for r in json.loads((out / "tables" / "efficiency.json").read_text())["rows"]}
    assert eff["mid"]["peak_memory"] == 6e9 and eff["mid"]["tokens_per_s"] == pytest.approx(8.0)
    # the report is rebuilt from the store alone: nothing is loaded or generated
    h2 = Harness()
    study.build_report(path, quiet=True)
    assert h2.loads == [] and h2.generated == []


def test_report_names_pairs_not_run_yet(tmp_path: Path) -> None:
    h = Harness()
    path = _write(tmp_path, [("small", 3, 1_000_000)])
    h.run(path, report=False)
    path = _write(tmp_path, [("small", 3, 1_000_000), ("late", 1, 5)])
    files = study.build_report(path, quiet=True)
    summary = json.loads(files.summary.read_text())
    assert summary["missing"] == [["late", "count-a"], ["late", "count-b"]]
    assert "late on count-a" in files.html.read_text()


def test_seeds_and_shots_multiply_runs_but_replay_and_reference_ignore_seeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLMBENCH_DATA", raising=False)  # relative paths: the study file's folder
    path = tmp_path / "s.toml"
    (tmp_path / "gen.jsonl").write_text("")
    path.write_text(
        """
tasks = ["humaneval"]
seeds = [1, 2, 3]
shots = [0, 2]
[[models]]
name = "m"
model = "hf:./tiny"
[[models]]
name = "r"
model = "replay"
samples = { humaneval = "gen.jsonl" }
[[models]]
name = "ref"
model = "reference"
"""
    )
    spec = study.load_study(path)
    runs = study.plan(spec)
    by = {name: [r for r in runs if r.model.name == name] for name in ("m", "r", "ref")}
    assert len(by["m"]) == 6 and len(by["r"]) == 2 and len(by["ref"]) == 2
    assert {r.spec.decoding.seed for r in by["m"]} == {1, 2, 3}
    assert by["m"][0].spec.model == f"hf:{tmp_path / 'tiny'}"  # relative to the study file
    assert by["r"][0].spec.samples == tmp_path / "gen.jsonl"  # no data dir: relative to the study file
    assert {r.spec.label for r in runs} == {"m", "r", "ref"}


def test_samples_are_found_through_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    path = tmp_path / "s.toml"
    path.write_text(
        'tasks = ["humaneval"]\ndata_dir = "data"\n[[models]]\nname = "r"\nmodel = "replay"\nsamples = { humaneval = "g/x.jsonl" }\n'
    )
    monkeypatch.delenv("SLMBENCH_DATA", raising=False)
    assert study.plan(study.load_study(path))[0].spec.samples == data / "g" / "x.jsonl"
    # the file's data_dir does not exist here: $SLMBENCH_DATA is used instead
    path.write_text(path.read_text().replace('"data"', '"nowhere"'))
    monkeypatch.setenv("SLMBENCH_DATA", str(data))
    assert study.plan(study.load_study(path))[0].spec.samples == data / "g" / "x.jsonl"
    monkeypatch.delenv("SLMBENCH_DATA")
    with pytest.raises(UserError, match="data_dir .*nowhere does not exist"):
        study.plan(study.load_study(path))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('tasks = ["humaneval"\n', r"s.toml: not valid TOML .*line"),
        ('tasks = ["humaneval"]\n', r"s.toml: models: Field required"),
        (
            'tasks = ["humaneval"]\n[[models]]\nmodel = "reference"\n',
            r"models.0.name \(\[\[models\]\] entry 1\): Field required",
        ),
        (
            'tasks = ["humaneval"]\n[[models]]\nname = "a"\nmodel = "reference"\n[[models]]\nname = "a"\nmodel = "x"\n',
            "repeated: a",
        ),
        (
            'tasks = ["humaneval"]\n[[models]]\nname = "r"\nmodel = "replay"\n',
            r"models.0 \(model 'r'\): .*lists no `samples`",
        ),
        (
            'tasks = ["humaneval"]\ngroups = { thresholds = [6e9, 2e9] }\n[[models]]\nname = "a"\nmodel = "reference"\n',
            "ascending",
        ),
        ('tasks = ["humaneval"]\nbogus = 1\n[[models]]\nname = "a"\nmodel = "reference"\n', "bogus: Extra inputs"),
    ],
)
def test_study_file_errors_name_file_and_field(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=match):
        study.load_study(path)


def test_missing_study_file_and_missing_store(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        study.load_study(tmp_path / "nope.toml")
    path = _write(tmp_path, [("a", 1, 1)])
    with pytest.raises(UserError, match="study run"):
        study.build_report(path, quiet=True)


def test_report_does_not_pass_off_runs_of_other_settings_as_the_files(tmp_path: Path) -> None:
    h = Harness()
    path = _write(tmp_path, [("small", 3, 1_000_000), ("large", 1, 9_000_000_000)])
    h.run(path)
    # small's args change (a new model identity) and large's n changes: until they run again,
    # the report must say so instead of showing the old figures as the file's
    text = path.read_text().replace("period = 3", "period = 2")
    path.write_text(text.replace('name = "large"\nmodel = "quality"', 'name = "large"\nmodel = "quality"\nn = 2'))
    files = study.build_report(path, quiet=True)
    summary = json.loads(files.summary.read_text())
    assert sorted(summary["missing"]) == [
        ["large", "count-a"],
        ["large", "count-b"],
        ["small", "count-a"],
        ["small", "count-b"],
    ]
    assert not (tmp_path / "out" / "tables" / "ranking_count_a.csv").exists()
    Harness().run(path)
    ranking = json.loads((tmp_path / "out" / "tables" / "ranking_count_a.json").read_text())
    rows = {r["model"]: r for r in ranking["rows"]}
    # period 2 over 3 samples: 2/3 on the 3 even problems, 1/3 on the 2 odd ones
    assert rows["small"]["pass@1"] == pytest.approx(8 / 15) and rows["large"]["n"] == 2


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            'tasks = ["humanevl"]\n[[models]]\nname = "a"\nmodel = "reference"\n',
            r"s.toml: tasks.0: unknown task 'humanevl' .*did you mean humaneval",
        ),
        (
            'tasks = ["humaneval"]\n[[models]]\nname = "a"\nmodel = "referenc"\n',
            r"s.toml: models.0.model \(model 'a'\): unknown backend .*did you mean reference",
        ),
        (
            'tasks = ["humaneval"]\n[[models]]\nname = "r"\nmodel = "replay"\nsamples = { mbp = "x.jsonl" }\n',
            r"s.toml: models.0.samples \(model 'r'\): unknown task 'mbp'",
        ),
        (  # the few-shot ablation: known before hours of other pairs, not when mercury's turn comes
            'tasks = ["humaneval", "mbpp", "mercury", "multiple-php"]\nshots = [0, 3]\n'
            '[[models]]\nname = "a"\nmodel = "reference"\n',
            r"s.toml: shots: mercury, multiple-php have no few-shot examples",
        ),
    ],
)
def test_unknown_names_fail_before_anything_runs_naming_file_and_field(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=match):
        study.run_study(path, quiet=True)
    assert not (tmp_path / "study-output" / "study.db").exists()


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ("k = [0, 1]", r"s.toml: k: k must be a non-empty list of positive integers"),
        ('pareto_task = "mbpp"', r"pareto_task 'mbpp' is not one of the study's tasks"),
        ('multilingual = { Python = "humaneval", Go = "humanevalpack-go" }', r"Go = 'humanevalpack-go'"),
    ],
)
def test_study_values_a_run_would_choke_on_or_ignore_are_refused(tmp_path: Path, extra: str, match: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(f'tasks = ["humaneval"]\n{extra}\n[[models]]\nname = "a"\nmodel = "reference"\n')
    with pytest.raises(UserError, match=match):
        study.load_study(path)


def test_unknown_backend_fails_before_anything_runs(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('tasks = ["humaneval"]\n[[models]]\nname = "a"\nmodel = "referenc"\n')
    with pytest.raises(UserError, match="did you mean reference"):
        study.run_study(path, quiet=True)
    assert not (tmp_path / "study-output" / "study.db").exists()


def test_size_groups_from_thresholds_names_or_explicit() -> None:
    g = study.GroupsSpec(thresholds=[2e9, 6e9])
    assert g.labels() == ["Group 1 (< 2.0B)", "Group 2 (2.0B-6.0B)", "Group 3 (>= 6.0B)"]
    assert [g.group_of(x) for x in (0.5e9, 2e9, 7e9, None)] == [g.labels()[0], g.labels()[1], g.labels()[2], None]
    named = study.GroupsSpec(thresholds=[1e9], names=["small", "large"])
    assert named.group_of(3e9) == "large"


def test_language_mapping() -> None:
    assert study.language_of("multiple-cpp") == "C++" and study.language_of("humanevalpack-js") == "JavaScript"
    assert study.language_of("humaneval") == "Python" and study.language_of("mbpp") is None


def test_seeds_are_separate_runs_pooled_per_problem_in_the_report(tmp_path: Path) -> None:
    h = Harness()
    path = _write(tmp_path, [("m", 2, 1000)])
    path.write_text(path.read_text().replace("n = 3", "n = 1\nseeds = [0, 1]"))
    summary = h.run(path)
    assert h.loads == ["m"] and summary.runs == 4  # 2 tasks x 2 seeds, one load
    ranking = json.loads((tmp_path / "out" / "tables" / "ranking_count_a.json").read_text())
    (row,) = ranking["rows"]
    # seed 0 passes P/0, P/2, P/4; seed 1 passes P/1, P/3: every problem 0.5 after pooling
    assert row["pass@1"] == pytest.approx(0.5) and row["pass@1 ci_low"] == pytest.approx(0.5)
    assert "averaged over 2 seeds" in " ".join(ranking["notes"])


@pytest.mark.slow
@pytest.mark.toolchain
def test_published_study_reproduces_the_publishers_figures(tmp_path: Path, data_dir: Path) -> None:
    """examples/published.toml replays real models' generations: Qwen2.5-Coder 1.5B/7B HumanEval
    pass@1 43.9 / 61.6 (the publisher's figures) and their per-language results are in the report."""
    from html.parser import HTMLParser

    repo = Path(__file__).resolve().parents[1]
    summary = study.run_study(repo / "examples" / "published.toml", output=tmp_path, data_dir=data_dir, quiet=True)
    assert summary.loads == []  # replayed: no model is ever loaded
    files = summary.report
    ranking = json.loads((tmp_path / "tables" / "ranking_humaneval.json").read_text())
    rows = {r["model"]: r for r in ranking["rows"]}
    assert (
        f"{100 * rows['Qwen2.5-Coder-1.5B']['pass@1']:.1f}"
        == "43.9"
        == f"{rows['Qwen2.5-Coder-1.5B']['published pass@1']}"
    )
    assert (
        f"{100 * rows['Qwen2.5-Coder-7B']['pass@1']:.1f}" == "61.6" == f"{rows['Qwen2.5-Coder-7B']['published pass@1']}"
    )
    assert f"{100 * rows['CodeLlama-34B-Instruct']['pass@1']:.1f}" == "45.1"
    assert rows["GPT-Neo-125M"]["pass@1"] == pytest.approx(0.0012, abs=1e-4)
    assert rows["GPT-Neo-125M"]["pass@10"] == pytest.approx(0.0122, abs=1e-4)

    multi = {r["model"]: r for r in json.loads((tmp_path / "tables" / "multilingual.json").read_text())["rows"]}
    assert set(multi) == {"Qwen2.5-Coder-1.5B", "Qwen2.5-Coder-7B", "CodeLlama-34B-Instruct", "GPT-Neo-125M"}
    # C++ and JavaScript: equal to the publisher's figures on every problem (MANIFEST.md);
    # Java and PHP within one problem of them (see tests/test_replay_multiple.py for why)
    for model, figures in {
        "Qwen2.5-Coder-1.5B": {"C++": 42.86, "JavaScript": 47.83, "Java": 38.61, "PHP": 44.1},
        "Qwen2.5-Coder-7B": {"C++": 62.11, "JavaScript": 60.25, "Java": 53.16, "PHP": 59.01},
    }.items():
        assert multi[model]["Python"] == rows[model]["pass@1"]
        for lang, published in figures.items():
            tol = 0.01 if lang in ("C++", "JavaScript") else 100 / 158 + 0.01
            assert 100 * multi[model][lang] == pytest.approx(published, abs=tol), (model, lang)
    html = files.html.read_text()

    class Cells(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.text: list[str] = []

        def handle_data(self, data: str) -> None:
            self.text.append(data.strip())

    cells = Cells()
    cells.feed(html)
    assert any(t.startswith("43.9 [") for t in cells.text) and any(t.startswith("61.6 [") for t in cells.text)
    assert "not measured" in cells.text  # replayed: no cost figures, never zeros
    assert "heatmap-languages" in files.plots and "multilingual" in {p.stem for p in files.tables}


def test_replayed_files_with_programs_in_another_field_and_foreign_problems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """samples_field rewrites whole programs held under another name; skip_unknown_problems drops
    samples of problems the task does not have (a file made for another benchmark version)."""
    monkeypatch.delenv("SLMBENCH_DATA", raising=False)  # relative paths: the study file's folder
    rows = [
        {"task_id": "HumanEval/0", "generation": "GOOD = 1"},
        {"task_id": "HumanEval/1", "generation": "BAD = 1"},
        {"task_id": "Removed/7", "generation": "GOOD = 2"},
    ]
    (tmp_path / "gen.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = tmp_path / "s.toml"
    path.write_text(
        'tasks = ["humaneval"]\nlimit = 2\nn = 1\nk = [1]\nbootstrap = 20\noutput = "out"\n'
        '[[models]]\nname = "r"\nmodel = "replay"\nsamples.humaneval = "gen.jsonl"\n'
        'samples_field = { humaneval = "generation" }\nskip_unknown_problems = true\n'
    )
    executor = FakeExecutor()
    summary = study.run_study(path, quiet=True, executor=executor)
    assert summary.loads == [] and summary.generated == 2 and len(executor.ran) == 2
    ranking = json.loads((tmp_path / "out" / "tables" / "ranking_humaneval.json").read_text())
    assert ranking["rows"][0]["pass@1"] == 0.5
    notes = json.loads(summary.report.summary.read_text())["notes"]
    assert any("skip_unknown_problems" in n for n in notes)
    # the programs run are the `generation` texts, as they were
    with Store(tmp_path / "out" / "study.db") as store:
        (run,) = store.runs()
        assert [g.solution for g in store.generations(run.run_id)] == ["GOOD = 1", "BAD = 1"]
    # without skip_unknown_problems the foreign id stops the run with a one-line error
    path.write_text(path.read_text().replace("skip_unknown_problems = true", "").replace('"out"', '"out2"'))
    with pytest.raises(UserError, match="unknown task id 'Removed/7'"):
        study.run_study(path, quiet=True, executor=FakeExecutor())


def test_publisher_figures_per_task_or_per_metric() -> None:
    m = study.ModelSpec(
        name="m", model="reference", published={"humaneval": 43.9, "mbppplus": {"pass@1": 69.2, "pass@1/plus": 58.6}}
    )
    assert study._published(m, "humaneval") == {"pass@1": 43.9}
    assert study._published(m, "mbppplus") == {"pass@1": 69.2, "pass@1/plus": 58.6}
    assert study._published(m, "mbpp") == {}


class SlowerEachSample(QualityBackend):
    """Sample s takes 1 + s seconds: the mean latency says which samples it covers."""

    def generate(self, requests: Sequence[GenerationRequest], decoding: DecodingSpec) -> Iterator[Completion]:
        for c in super().generate(requests, decoding):
            yield Completion(c.problem_id, c.sample, c.text, usage=Usage(completion_tokens=4, latency_s=1.0 + c.sample))


def test_efficiency_covers_the_samples_that_were_scored(tmp_path: Path) -> None:
    # a pair first run with n=4, then scored with n=3: the store keeps the 4th sample of each
    # problem, but the cost figures must describe the same 3 samples as pass@k
    h = Harness()
    h.backend = lambda model, spec: SlowerEachSample(2, 3_000_000_000, h.generated)  # type: ignore[method-assign]
    path = _write(tmp_path, [("mid", 2, 3_000_000_000)])
    path.write_text(path.read_text().replace("n = 3", "n = 4"))
    h.run(path, report=False)
    path.write_text(path.read_text().replace("n = 4", "n = 3"))
    files = h.run(path).report
    rows = json.loads((files.html.parent / "tables" / "efficiency.json").read_text())["rows"]
    (row,) = [r for r in rows if r["model"] == "mid"]
    assert row["latency"] == pytest.approx((1 + 2 + 3) / 3)  # samples 0-2; with sample 3: 2.5


def test_new_time_limit_executes_again_without_generating(tmp_path: Path) -> None:
    # verdicts depend on the time limit: a study re-run with another one must not report the
    # old verdicts as the new limit's, and must not load the model for it either
    path = _write(tmp_path, [("small", 3, 1_000_000)])
    Harness().run(path, report=False)
    path.write_text(path.read_text() + "\n[execution]\ntimeout_s = 7.5\n")
    again = Harness()
    summary = again.run(path, report=False)
    assert summary.ran == 2 and summary.skipped == 0
    assert again.loads == [] and again.generated == []
    assert len(again.executor.ran) == 2 * 5 * 3
    assert Harness().run(path, report=False).skipped == 2  # and then it is done
