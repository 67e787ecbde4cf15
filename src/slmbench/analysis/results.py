"""What a study's tables are built from: plain records, read from the store by ``slmbench.study``.

Kept apart from the store so that tables, statistics and the report can be built (and tested)
from any source of results. ``None`` always means "not measured" or "not run", never zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from slmbench.types import Score, Usage


@dataclass(frozen=True)
class ModelEntry:
    name: str  # display name, unique in the study
    parameters: float | None = None  # declared in the study file, or detected by the backend
    parameters_source: str = ""  # "declared" | "detected" | ""
    group: str | None = None  # size group
    backend: str = ""
    replayed: bool = False


@dataclass(frozen=True)
class Efficiency:
    """Aggregated usage of one model on one benchmark. None = not measured."""

    samples: int = 0
    peak_memory_bytes: int | None = None
    memory_kind: str | None = None  # "VRAM" | "RSS"
    latency_s_per_sample: float | None = None
    tokens_per_s: float | None = None
    energy_j_per_problem: float | None = None
    energy_j_per_token: float | None = None
    load_time_s: float | None = None

    @property
    def measured(self) -> bool:
        return any(
            v is not None
            for v in (self.peak_memory_bytes, self.latency_s_per_sample, self.tokens_per_s, self.energy_j_per_problem)
        )


def efficiency_from_usages(
    usages: Iterable[Usage], *, n_problems: int, device: str | None = None, load_time_s: float | None = None
) -> Efficiency:
    """Aggregate per-sample measurements with :func:`slmbench.metrics.efficiency.summarize` (the
    definitions ``slmbench show`` uses): a figure is None unless every sample measured it."""
    from slmbench.metrics.efficiency import memory_kind, summarize

    us = list(usages)
    d = summarize(us, None, problems=n_problems)
    peak = d.get("peak_memory_bytes")
    return Efficiency(
        samples=len(us),
        peak_memory_bytes=peak,
        memory_kind=memory_kind(device) if peak is not None else None,
        latency_s_per_sample=d.get("mean_latency_s"),
        tokens_per_s=d.get("tokens_per_s"),
        energy_j_per_problem=d.get("energy_per_problem_j"),
        energy_j_per_token=d.get("energy_per_token_j"),
        load_time_s=load_time_s,
    )


@dataclass(frozen=True)
class PairResult:
    """One model on one benchmark (seeds already pooled)."""

    model: str
    task: str
    shots: int = 0
    scores: Mapping[str, Score] = field(default_factory=dict)  # metric -> task-level score
    per_problem: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # metric -> problem -> value
    efficiency: Efficiency | None = None
    n: int = 0  # samples per problem
    n_problems: int = 0
    seeds: int = 1
    run_ids: tuple[str, ...] = ()
    published: Mapping[str, float] = field(default_factory=dict)  # metric -> publisher's figure (same scale)

    @property
    def headline(self) -> str | None:
        for metric in ("pass@1", "bleu"):
            if metric in self.scores:
                return metric
        return next(iter(self.scores), None)

    def value(self, metric: str) -> float | None:
        s = self.scores.get(metric)
        return None if s is None else s.value


@dataclass(frozen=True)
class StudyResults:
    name: str
    models: tuple[ModelEntry, ...]
    benchmarks: tuple[str, ...]  # display keys, in study order ("humaneval", or "mbpp (3-shot)")
    pairs: tuple[PairResult, ...]
    languages: Mapping[str, str] = field(default_factory=dict)  # benchmark key -> language, multilingual set
    missing: tuple[tuple[str, str], ...] = ()  # (model, benchmark) pairs with no finished run
    pareto_benchmark: str | None = None
    notes: tuple[str, ...] = ()
    multi_shot: bool = False  # several shot counts: benchmarks are keyed "task (k-shot)"
    environment: Mapping[str, object] = field(default_factory=dict)

    def model(self, name: str) -> ModelEntry:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)

    def pair(self, model: str, benchmark: str) -> PairResult | None:
        for p in self.pairs:
            if p.model == model and benchmark_key(p.task, p.shots, self.multi_shot) == benchmark:
                return p
        return None

    def key(self, pair: PairResult) -> str:
        return benchmark_key(pair.task, pair.shots, self.multi_shot)


def benchmark_key(task: str, shots: int, multi_shot: bool) -> str:
    return f"{task} ({shots}-shot)" if multi_shot else task
