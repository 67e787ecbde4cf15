"""`python tests/slow_cli.py ARGS...` = `slmbench ARGS...` with one more backend, `slowref`:
the reference backend slowed down per completion, so that a test can kill a run mid-generation."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slmbench.backends import BACKENDS  # noqa: E402
from slmbench.backends.base import Backend, GenerationRequest  # noqa: E402
from slmbench.spec import DecodingSpec  # noqa: E402
from slmbench.types import Completion  # noqa: E402


class SlowReference(Backend):
    name = "slowref"

    def generate(self, requests: Sequence[GenerationRequest], decoding: DecodingSpec) -> Iterator[Completion]:
        for req in requests:
            for s in req.samples:
                time.sleep(0.01)
                yield Completion(req.problem.problem_id, s, req.reference, form=req.reference_form)


if __name__ == "__main__":
    BACKENDS.add("slowref", SlowReference)
    from slmbench.cli import main

    sys.argv[0] = "slmbench"
    main()
