"""Validated run configuration: the one source of defaults.

The defaults are the protocol of the study this tool reproduces (zero-shot, n=10,
temperature 0.2, top-p 0.95, pass@1/5/10). Everything that changes which samples a model
produces is part of the run's identity (:meth:`RunSpec.identity`); everything that only changes
how many of them are made or how they are scored (n, k, limits) is not, so ``--n 20`` on a
finished n=10 run extends it instead of starting over.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SandboxLevel = Literal["default", "bwrap", "none"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DecodingSpec(_Frozen):
    temperature: float = Field(0.2, ge=0.0, le=5.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0, description="0 disables top-k filtering")
    max_new_tokens: int = Field(512, ge=1)
    seed: int = 1234
    batch_size: int = Field(10, ge=1, description="sequences per forward pass (halved on OOM)")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


class ExecSpec(_Frozen):
    timeout_s: float | None = Field(None, gt=0, description="CPU seconds per test run (None: the task's default)")
    memory_mb: int | None = Field(None, ge=64, description="address-space limit (None: the task's default)")
    workers: int = Field(0, ge=0, description="0 = one per CPU core")
    sandbox: SandboxLevel = "default"
    dedupe: bool = Field(True, description="run identical programs once and reuse the verdict")
    shared_builds: bool = Field(
        True, description="compile many C++/Rust programs per compiler run (each still runs alone)"
    )

    def executor_options(self) -> dict[str, Any]:
        """Keyword arguments of ``Executor`` that this spec sets."""
        return self.model_dump(include={"workers", "sandbox", "dedupe", "shared_builds"})

    def verdict_settings(self) -> dict[str, Any]:
        """The settings a verdict depends on: stored verdicts made under others are stale
        (workers, dedupe and shared_builds only change the speed)."""
        return self.model_dump(include={"timeout_s", "memory_mb", "sandbox"})


def positive_ks(v: Sequence[int]) -> tuple[int, ...]:
    """The k of pass@k, sorted and without repeats (a run spec's and a study file's)."""
    if not v or any(x < 1 for x in v):
        raise ValueError("k must be a non-empty list of positive integers")
    return tuple(sorted(set(v)))


class RunSpec(_Frozen):
    model: str = Field(..., min_length=1, description="backend name or backend:target, e.g. hf:Qwen/Qwen2.5-Coder-1.5B")
    model_args: dict[str, str] = Field(default_factory=dict)
    task: str = Field(..., min_length=1)
    n: int = Field(10, ge=1, description="samples per problem")
    k: tuple[int, ...] = (1, 5, 10)
    shots: int = Field(0, ge=0)
    limit: int | None = Field(None, ge=1, description="only the first N problems")
    chat: bool = False
    decoding: DecodingSpec = Field(default_factory=DecodingSpec)
    execution: ExecSpec = Field(default_factory=ExecSpec)
    bootstrap: int = Field(1000, ge=0, description="bootstrap resamples for confidence intervals")
    data_dir: Path | None = None
    allow_download: bool = Field(False, description="may load datasets/models from the network")
    # replay only: where the generations come from and their shape
    samples: Path | None = None
    samples_format: str | None = None
    samples_checksum: str | None = None
    # a model loaded from a local path: a fingerprint of its files (see pipeline.resolve_spec)
    model_checksum: str | None = None
    label: str | None = Field(None, description="display name of the model in tables")

    @field_validator("k")
    @classmethod
    def _k_positive(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        return positive_ks(v)

    @model_validator(mode="after")
    def _replay_needs_samples(self) -> RunSpec:
        if self.model == "replay" and self.samples is None:
            raise ValueError("the replay backend needs a samples file")
        return self

    @property
    def backend_name(self) -> str:
        return self.model.split(":", 1)[0]

    def identity(self) -> dict[str, Any]:
        """What decides the samples: equal identities share generations in the store."""
        ident: dict[str, Any] = {
            "model": self.model,
            "model_args": dict(sorted(self.model_args.items())),
            "task": self.task,
            "shots": self.shots,
            "chat": self.chat,
        }
        if self.backend_name == "replay":
            ident["samples_checksum"] = self.samples_checksum
            ident["samples_format"] = self.samples_format
        elif self.model != "reference":
            ident["decoding"] = self.decoding.model_dump(exclude={"batch_size"})
        if self.model_checksum is not None:
            ident["model_checksum"] = self.model_checksum
        return ident

    def run_id(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True, default=str).encode()
        digest = hashlib.sha256(blob).hexdigest()[:10]
        model = re.sub(r"[^A-Za-z0-9._-]+", "_", self.model).strip("_")[-40:]
        return f"{self.task}--{model}--{digest}"
