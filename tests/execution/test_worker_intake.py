"""A worker's intake: the frames of its request pipe, taken in as many at a time as have come
(worker.FrameReader), the inline programs of such a batch compiled ahead of their turn
(Worker.compile_ahead), and how many requests the harness keeps in flight (prefetch.py)."""

from __future__ import annotations

import json
import marshal
import os
import threading
import time

from slmbench.execution import zygote
from slmbench.execution.inline import PASSED, SYNTAX
from slmbench.execution.pool import Executor
from slmbench.execution.prefetch import MAX_DEPTH, MIN_DEPTH, WINDOW, Prefetch
from slmbench.execution.sandbox import Isolation
from slmbench.execution.worker import COMPILE_LIMIT, Compiled, Compiler, FrameReader, Worker
from slmbench.execution.zygote import MAKE_DIR, Sample
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


# ---- a group of samples in the zygote (Worker.run_group) ----------------------------------
def inline_worker(tmp_path) -> Worker:
    # No sandbox uid here, so the zygote answers each sample as it ends; the answers it holds
    # back under one (as root, the default sandbox) are the e2e test's above.
    library = zygote.library_path()
    assert library is not None, "no zygote library: CI has a C compiler, see test_zygote.py"
    return Worker(Isolation(level="none"), tmp_path, library)


def texts(result: dict, work: str) -> tuple:
    # (each worker has a work dir of its own, named in tracebacks)
    stderr = result["stderr"].replace(work, "<work>")
    return result["verdict"], result["message"], result["stdout"], stderr, result["exit_code"]


def test_a_group_gives_each_sample_what_it_would_get_alone(tmp_path):
    programs = [
        ("reads", "import sys\nprint(sys.stdin.read().upper())\n", "abc"),
        ("loops", "while True:\n    pass\n", ""),
        ("fails", "assert 1 == 2, 'no'\n", ""),
        ("bad", "def f(:\n    pass\n", ""),
        ("warns", "assert (1, 'always true')\nprint('ran')\n", ""),
        ("writes", "open('left.txt', 'w').write('x')\nprint('wrote')\n", ""),  # leaves the work dir taken:
        ("looks", "import os\nprint(sorted(os.listdir('.')))\n", ""),  # this one runs alone, after a tidy
    ]
    batch = [
        {**request(i, text, stdin=stdin), "limits": {"timeout_s": 0.5, "wall_timeout_s": 2.0}}
        for i, (_, text, stdin) in enumerate(programs)
    ]
    grouped = inline_worker(tmp_path / "group")
    try:
        together = [out for group in grouped.take(batch) for out in group]
    finally:
        grouped.close()
    single = inline_worker(tmp_path / "alone")
    try:
        alone = [single.one(msg) for msg in batch]
    finally:
        single.close()
    assert [out["id"] for out in together] == list(range(len(programs)))
    for (name, _, _), a, b in zip(programs, together, alone, strict=True):
        assert texts(a, grouped.work_root) == texts(b, single.work_root), name
    verdicts = {name: out["verdict"] for (name, _, _), out in zip(programs, together, strict=True)}
    assert verdicts == {
        "writes": "passed",
        "looks": "passed",
        "reads": "passed",
        "loops": "timeout",
        "fails": "failed",
        "bad": "error",
        "warns": "passed",
    }
    assert together[6]["stdout"] == "[]\n"  # a fresh work dir, though the sample before left a file
    assert together[0]["stdout"] == "ABC\n" and "SyntaxWarning" in together[4]["stderr"]


def test_losing_the_zygote_in_a_group_costs_one_sample(tmp_path):
    parent = "import os\nprint(os.getppid())\n"
    kill = "import os, signal, time\nos.kill(os.getppid(), signal.SIGKILL)\ntime.sleep(2)\n"
    batch = [request(i, text) for i, text in enumerate([parent, parent, kill, parent, parent])]
    worker = inline_worker(tmp_path)
    try:
        outs = [out for group in worker.take(batch) for out in group]
    finally:
        worker.close()
    assert [out["verdict"] for out in outs] == ["passed", "passed", "error", "passed", "passed"]
    assert "lost its sample" in outs[2]["message"]
    before, after = {outs[0]["stdout"], outs[1]["stdout"]}, {outs[3]["stdout"], outs[4]["stdout"]}
    assert len(before) == len(after) == 1 and before != after  # the rest ran in a new zygote


def test_the_zygote_holds_answers_back_only_under_a_sandbox_uid(tmp_path):
    # Under a uid of their own samples cannot signal the zygote, so it may hold the answers of
    # samples sent together until the last is done (one wake-up of the worker for all); without
    # one a sample could kill it and take the held answers with it, so it answers each at once.
    root = os.geteuid() == 0
    uid = 1_000_000 + os.getpid() if root else None  # unused, as the worker's own are
    worker = Worker(Isolation(level="none", sandbox_uid=uid), tmp_path, zygote.library_path())
    try:
        worker.start_zygote("python", PYTHON)
        src = os.path.join(worker.sample_dir, "main.py")
        texts = ["print('a')\n", "import time\ntime.sleep(0.5)\nprint('b')\n", "print('c')\n"]
        limits = ExecLimits(timeout_s=2.0, wall_timeout_s=4.0)
        started = time.monotonic()
        for text in texts:
            code = marshal.dumps(compile(text, src, "exec", dont_inherit=True))
            sample = Sample(code, text, PASSED + b"token")
            worker.zygote.submit(worker.zygote.request(worker.sample_dir, sample, b"", limits, uid, MAKE_DIR))
        first, _ = worker.zygote.collect()
        first_after = time.monotonic() - started
        rest = [worker.zygote.collect()[0] for _ in texts[1:]]
    finally:
        worker.close()
    assert [o.stdout for o in [first, *rest]] == [b"a\n", b"b\n", b"c\n"]
    assert all(o.exit_code == 0 and o.result == PASSED + b"token" for o in [first, *rest])
    if root:
        assert first_after >= 0.5  # held until the sleeper's successor was done
    else:
        assert first_after < 0.4  # answered as it ended


def test_a_group_larger_than_the_zygote_socket_holds_does_not_stall(tmp_path):
    # Samples with large inputs and outputs: sent all at once, the worker would block on the
    # socket while the zygote blocks answering (it sends answers as they end without a sandbox
    # uid, and held ones past a megabyte). The worker sends what the socket holds at a time.
    big_in = "x" * 300_000
    echo = "import sys\ndata = sys.stdin.read()\nprint(len(data))\nsys.stdout.write('o' * 70000)\nsys.stderr.write('e' * 70000)\n"
    batch = [request(i, echo, stdin=big_in) for i in range(6)]
    worker = inline_worker(tmp_path)
    outs: list = []
    runner = threading.Thread(target=lambda: outs.extend(o for group in worker.take(batch) for o in group), daemon=True)
    try:
        runner.start()
        runner.join(60)
        stalled = runner.is_alive()
    finally:
        worker.close()  # (ends a stalled zygote too)
    assert not stalled, "the worker and its zygote waited for each other"
    assert [o["stdout"][:7] for o in outs] == ["300000\n"] * 6
    assert all(o["verdict"] == "passed" for o in outs)
