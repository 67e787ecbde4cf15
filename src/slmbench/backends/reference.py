"""The ``reference`` backend: answers every problem with the task's known-good solution.

A self-check of the whole pipeline (prompting, post-processing, execution, scoring) that needs
no model: a correct harness scores it pass@k = 1.0 on every problem.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from slmbench.backends.base import Backend, BackendInfo, GenerationRequest
from slmbench.spec import DecodingSpec
from slmbench.types import Completion, Usage


class ReferenceBackend(Backend):
    name = "reference"

    def generate(self, requests: Sequence[GenerationRequest], decoding: DecodingSpec) -> Iterator[Completion]:
        for request in requests:
            for sample in request.samples:
                # Usage() is all None: nothing was measured, and zero would be a lie
                yield Completion(
                    problem_id=request.problem.problem_id,
                    sample=sample,
                    text=request.reference,
                    finish_reason="reference",
                    usage=Usage(),
                    form=request.reference_form,
                )

    def info(self) -> BackendInfo:
        return BackendInfo(backend=self.name, model="reference")
