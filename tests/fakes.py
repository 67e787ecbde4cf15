"""Small in-memory stand-ins for a task, a backend and an executor, to test the pipeline's
bookkeeping (resume, extension, idempotence) without models or subprocesses."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from slmbench.backends.base import Backend, GenerationRequest
from slmbench.spec import DecodingSpec
from slmbench.tasks.base import Task
from slmbench.types import Completion, ExecLimits, ExecRequest, ExecResult, Problem, Usage, Verdict


class CountingTask(Task):
    """Five problems; a solution passes iff it contains GOOD."""

    name = "counting"

    def load(self) -> tuple[list[Problem], str]:
        problems = [Problem(task=self.name, problem_id=f"P/{i}", prompt=f"# problem {i}\n") for i in range(5)]
        return problems, "checksum-of-counting"

    def program(self, problem: Problem, solution: str, limits: ExecLimits) -> ExecRequest:
        return ExecRequest(key="", language="python", program=solution, limits=limits)


class ScriptedBackend(Backend):
    """Sample s of problem P/i is GOOD when (i + s) % 3 == 0; counts what it was asked for."""

    name = "scripted"

    def __init__(self) -> None:
        super().__init__("scripted")
        self.generated: list[tuple[str, int]] = []

    def generate(self, requests: Sequence[GenerationRequest], decoding: DecodingSpec) -> Iterator[Completion]:
        for req in requests:
            i = int(req.problem.problem_id.split("/")[1])
            for s in req.samples:
                self.generated.append((req.problem.problem_id, s))
                text = "GOOD" if (i + s) % 3 == 0 else "BAD"
                yield Completion(req.problem.problem_id, s, text, usage=Usage(completion_tokens=1))


class FakeExecutor:
    def __init__(self) -> None:
        self.ran: list[str] = []

    def run(self, requests: Iterable[ExecRequest]) -> Iterator[ExecResult]:
        for req in requests:
            self.ran.append(req.key)
            verdict = Verdict.PASSED if "GOOD" in req.program else Verdict.FAILED
            yield ExecResult(key=req.key, verdict=verdict, message="" if verdict is Verdict.PASSED else "assert")

    def close(self) -> None:
        pass
