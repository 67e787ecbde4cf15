"""How many requests the harness keeps in flight at each worker (pool.py).

A worker takes in every request that is waiting for it (the harness writes those it sends in
one go), compiles their programs one after another, and sends their inline samples to its
zygote together, which answers them together (worker.Worker.run_group): the more it has in
hand, the fewer times each of the three processes wakes, and the longer the compiler stays in
the CPU's caches (HumanEval x10 on 2 cores: 1.55 s with 2 requests in flight a worker, 1.45 s
with 4, 1.39 s with 8, 1.37 s with 16). But a request queued behind another waits for it however
long it runs, while another worker may run dry; so a worker gets about QUEUED_S of work queued,
going by the median time of the last samples, and never fewer than MIN_DEPTH requests (one
running, one waiting: it never waits for the harness).
"""

from __future__ import annotations

from collections import deque

MIN_DEPTH, MAX_DEPTH = 2, 16
QUEUED_S = 0.01
WINDOW = 32  # samples the median is taken over, recomputed every WINDOW // 2


class Prefetch:
    """Requests in flight a worker (``depth``), from the wall times of the samples run so far."""

    def __init__(self) -> None:
        self.depth = MIN_DEPTH
        self._recent: deque[float] = deque(maxlen=WINDOW)
        self._seen = 0

    def observe(self, wall_s: float) -> None:
        self._recent.append(wall_s)
        self._seen += 1
        if self._seen % (WINDOW // 2) == 0:
            ordered = sorted(self._recent)
            median = ordered[len(ordered) // 2]
            self.depth = max(MIN_DEPTH, min(MAX_DEPTH, 1 + int(QUEUED_S / max(median, 1e-6))))
