"""The Backend interface: a model runtime that turns prompts into completions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from slmbench.spec import DecodingSpec
from slmbench.tasks.base import CompletionForm
from slmbench.types import Completion, Problem


@dataclass(frozen=True)
class GenerationRequest:
    """Generate the listed samples of one problem (only those missing from the store)."""

    problem: Problem
    prompt: str
    samples: tuple[int, ...]
    stop_sequences: tuple[str, ...] = ()
    # what the reference backend should emit, supplied by the task
    reference: str = ""
    reference_form: CompletionForm = "continuation"


@dataclass(frozen=True)
class BackendInfo:
    """Facts about the loaded model, recorded once per run. None = not measurable here."""

    backend: str
    model: str
    parameters: int | None = None
    load_time_s: float | None = None
    device: str | None = None
    dtype: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class Backend(ABC):
    """A model runtime. Subclasses register themselves in ``slmbench.backends``.

    ``generate`` streams completions as they finish, so the caller can store them at once
    (a crash loses at most the batch in flight). Completions carry their :class:`Usage`.
    """

    name: ClassVar[str]
    # "continuation" for base-model runtimes; a chat backend yields "program" completions
    form: CompletionForm = "continuation"
    # True for runtimes that may fetch weights from a hub: they take an ``allow_download`` kwarg
    uses_hub: ClassVar[bool] = False
    # True for runtimes that need ``name:target`` (a model id, path or file); the example is for messages
    needs_target: ClassVar[bool] = False
    target_example: ClassVar[str] = ""

    def __init__(self, target: str, args: Mapping[str, str] | None = None, *, chat: bool = False) -> None:
        self.target = target
        self.args = dict(args or {})
        self.chat = chat

    @abstractmethod
    def generate(self, requests: Sequence[GenerationRequest], decoding: DecodingSpec) -> Iterator[Completion]:
        """Yield one Completion per requested (problem, sample), in any order."""

    def info(self) -> BackendInfo:
        return BackendInfo(backend=self.name, model=self.target)

    def events(self) -> list[dict[str, Any]]:
        """Notable things that happened during generation (e.g. OOM back-off), for the run record."""
        return []

    def close(self) -> None:
        """Release the model. Called once when the caller is done with all tasks."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
