"""The ``replay`` backend: scores generations made elsewhere, read from a samples file.

``ReplayBackend(target, args, samples=PATH, samples_format=None, task=TASK)``; ``--model replay:PATH``
also works (the target is then the samples file). The file is read once, on first use, by
:func:`slmbench.samples.read_samples`, which turns every shape into the program its own evaluator
ran (see ``docs/generations.md``). Sample ``s`` of a problem is its ``s``-th sample in file order;
samples beyond the requested ones are ignored, and a problem with fewer samples than requested is
an error raised before anything is yielded, so no partial run is stored.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from slmbench.backends.base import Backend, BackendInfo, GenerationRequest
from slmbench.errors import UserError
from slmbench.samples import FORMATS, SamplesFile, read_samples, samples_per_task
from slmbench.spec import DecodingSpec
from slmbench.tasks.base import Task
from slmbench.types import Completion, Usage

__all__ = ["ReplayBackend", "samples_per_task"]


class ReplayBackend(Backend):
    name = "replay"
    form = "program"

    def __init__(
        self,
        target: str,
        args: Mapping[str, str] | None = None,
        *,
        chat: bool = False,
        samples: Path | str | None = None,
        samples_format: str | None = None,
        task: Task | None = None,
        n: int | None = None,
        problem_ids: Sequence[str] | None = None,
    ) -> None:
        super().__init__(target, args, chat=chat)
        if samples is None and target and target != self.name:
            samples = target
        if samples is None:
            raise UserError("the replay backend needs a samples file", hint="pass --samples FILE")
        if samples_format is not None and samples_format not in FORMATS:
            raise UserError(f"unknown samples format {samples_format!r}", hint=f"use one of {', '.join(FORMATS)}")
        self.samples_path = Path(samples)
        self.samples_format = samples_format
        self.task = task
        self._file: SamplesFile | None = None
        if task is not None:
            # read and check the whole file now, before the caller records anything
            sf = self.samples_file(task)
            if n is not None:
                sf.check_n(list(problem_ids) if problem_ids is not None else [p.problem_id for p in task.problems()], n)

    def samples_file(self, task: Task | None = None) -> SamplesFile:
        if self._file is None:
            task = task or self.task
            if task is None:
                raise UserError(
                    "the replay backend was opened without the task its samples are for",
                    hint='score a file with `slmbench score --samples FILE --task T`; in a study use model = "replay"',
                )
            self._file = read_samples(self.samples_path, task, self.samples_format)
        return self._file

    def generate(self, requests: Sequence[GenerationRequest], decoding: DecodingSpec) -> Iterator[Completion]:
        if not requests:
            return
        sf = self.samples_file()
        need = {r.problem.problem_id: max(r.samples) + 1 for r in requests if r.samples}
        for n in sorted(set(need.values())):
            sf.check_n([pid for pid, k in need.items() if k == n], n)
        for request in requests:
            texts = sf.samples[request.problem.problem_id]
            for sample in request.samples:
                text, form = texts[sample]
                yield Completion(
                    problem_id=request.problem.problem_id,
                    sample=sample,
                    text=text,
                    finish_reason="replay",
                    usage=Usage(),
                    form=form,
                )

    def info(self) -> BackendInfo:
        extra: dict[str, object] = {"samples": str(self.samples_path)}
        if self._file is not None:
            extra.update(format=self._file.format, sha256=self._file.sha256, n_max=self._file.n_max)
        model = self.target if self.target != self.name else self.samples_path.stem
        return BackendInfo(backend=self.name, model=model, extra=extra)
