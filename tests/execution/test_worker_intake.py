"""A worker's intake: the frames of its request pipe, taken in as many at a time as have come
(worker.FrameReader), the inline programs of such a batch compiled ahead of their turn
(Worker.compile_ahead), and how many requests the harness keeps in flight (prefetch.py)."""

from __future__ import annotations

import json
import os
import threading
import time

from slmbench.execution.inline import SYNTAX
from slmbench.execution.pool import Executor
from slmbench.execution.prefetch import MAX_DEPTH, MIN_DEPTH, WINDOW, Prefetch
from slmbench.execution.sandbox import Isolation
from slmbench.execution.worker import COMPILE_LIMIT, Compiled, Compiler, FrameReader, Worker
from slmbench.types import ExecLimits, ExecRequest, Verdict

PYTHON = "slmbench.execution.languages.python:Python"
TESTS = (
    "\n\ndef check(candidate):\n    assert candidate(2) == 4\n    assert candidate(-3) == -6\n"
    "    assert candidate(0) == 0\n\ncheck(double)\n"
)


def frame(obj: object) -> bytes:
    data = json.dumps(obj).encode()
    return len(data).to_bytes(4, "big") + data


def test_frames_are_taken_in_as_many_as_have_come():
    r, w = os.pipe()
    try:
        reader = FrameReader(r)
        third = frame({"id": 3})
        os.write(w, frame({"id": 1}) + frame({"id": 2}) + third[:5])
        assert reader.read() == [{"id": 1}, {"id": 2}]
        os.write(w, third[5:] + frame({"id": 4}))
        assert reader.read() == [{"id": 3}, {"id": 4}]
        # a frame larger than a read, its end written later: read waits for all of it
        big = frame({"id": 5, "program": "x" * (3 * FrameReader.CHUNK)})

        def write_slowly() -> None:
            os.write(w, big[:10])
            time.sleep(0.05)
            os.write(w, big[10:])

        writer = threading.Thread(target=write_slowly)
        writer.start()
        assert reader.read() == [{"id": 5, "program": "x" * (3 * FrameReader.CHUNK)}]
        writer.join()
        os.write(w, frame({"id": 6})[:3])  # cut short by the end of the pipe
    finally:
        os.close(w)
    try:
        assert reader.read() is None
    finally:
        os.close(r)


def request(i: int, program: str, **extra: object) -> dict:
    limits = {"timeout_s": 2.0}
    return {"id": i, "language": "python", "language_path": PYTHON, "limits": limits, "program": program, **extra}


def test_a_batch_is_compiled_ahead_as_each_program_would_be_alone(tmp_path):
    worker = Worker(Isolation(level="none"), tmp_path)
    try:
        programs = [
            "def double(x):\n    return 2 * x\n" + TESTS,
            "def double(x):\n    return x + x\n" + TESTS,  # the same tests: a kept tail (SharedTails)
            "def double(x)\n    return 2 * x\n" + TESTS,  # does not compile
            "assert (1, 'always true')\n",  # compiles with a SyntaxWarning
            "x = 1\n" * (COMPILE_LIMIT // 6 + 1),  # too large: its own process compiles it
        ]
        batch = [request(i, p) for i, p in enumerate(programs)]
        batch += [
            request(10, programs[0], extra_files={"data.txt": "1"}),  # run in a dir of its own
            {"id": 11, "op": "build", "language": "python", "language_path": PYTHON, "programs": []},
            {**request(12, "pass"), "language": "cobol", "language_path": "nowhere:Cobol"},
        ]
        ahead = worker.compile_ahead(batch)
        src = os.path.join(worker.sample_dir, "main.py")
        alone = Compiler()  # a fresh one, given the programs in the same order
        assert ahead[: len(programs)] == [Compiled(src, *alone(p, src)) for p in programs]
        assert isinstance(ahead[1].code, list)  # the second reused the first's tests
        assert ahead[2].code[:1] == SYNTAX and "SyntaxWarning" in ahead[3].warned
        assert ahead[4].code is None
        assert ahead[len(programs) :] == [None, None, None]
        # one request alone gains nothing from compiling ahead: it is compiled in its turn
        assert worker.compile_ahead(batch[:1]) == [None]
    finally:
        worker.close()


def test_prefetch_queues_about_ten_milliseconds_of_work():
    prefetch = Prefetch()
    assert prefetch.depth == MIN_DEPTH  # before any sample ran
    for _ in range(WINDOW):
        prefetch.observe(0.0005)
    assert prefetch.depth == MAX_DEPTH
    for _ in range(WINDOW):
        prefetch.observe(0.004)
    assert prefetch.depth == 3  # one running, 8 ms queued
    for _ in range(WINDOW):
        prefetch.observe(2.0)
    assert prefetch.depth == MIN_DEPTH
    # a rare long sample (a test near its time limit) does not empty the queues
    for i in range(WINDOW):
        prefetch.observe(0.107 if i % 10 == 0 else 0.0005)
    assert prefetch.depth == MAX_DEPTH


def test_every_request_of_a_batch_gets_its_own_result(tmp_path):
    # Quick samples: after the first few the harness keeps MAX_DEPTH in flight, and the worker
    # takes them in (and compiles them) in batches. Each must still be judged on its own.
    kinds = {
        0: lambda i: f"def double(x):\n    return 2 * x\nprint({i})\n" + TESTS,
        1: lambda i: f"def double(x):\n    return x + {i}\n" + TESTS,  # i is odd: wrong
        2: lambda i: f"def double(x)\n    return {i}\n" + TESTS,
        3: lambda i: f"assert ({i}, 'always true')\nprint({i})\n",
    }
    requests = [
        ExecRequest(str(i), "python", kinds[i % 4](i), ExecLimits(timeout_s=2.0, wall_timeout_s=4.0))
        for i in range(160)
    ]
    with Executor(workers=1, dedupe=False, progress=False, cache_dir=tmp_path) as ex:
        results = {r.key: r for r in ex.run(requests)}
    for i in range(160):
        r = results[str(i)]
        kind = i % 4
        if kind == 0:
            assert (r.verdict, r.stdout) == (Verdict.PASSED, f"{i}\n"), i
        elif kind == 1:
            assert r.verdict is Verdict.FAILED and r.message.startswith("AssertionError"), (i, r.message)
        elif kind == 2:
            assert r.verdict is Verdict.ERROR and "SyntaxError" in r.message, (i, r.message)
        else:
            assert r.verdict is Verdict.PASSED and r.stdout == f"{i}\n", i
            assert r.stderr.count("SyntaxWarning") == 1, (i, r.stderr)
