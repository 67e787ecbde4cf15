"""The zygote (zygote.py): inline Python samples forked by it get exactly the set-up of samples
the worker forks itself, it really is in use, and losing it costs one sample at most."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from slmbench.execution import zygote
from slmbench.execution.pool import Executor
from slmbench.execution.sandbox import UID_BASE
from slmbench.types import ExecLimits, ExecRequest, ExecResult, Verdict

LIMITS = ExecLimits(timeout_s=3.0, memory_mb=2048, max_file_bytes=1 << 20, max_processes=64)
FAST = ExecLimits(timeout_s=1.0, wall_timeout_s=2.0, memory_mb=2048)

# What a sample can see of its own set-up. Its parent is the one thing that differs: the worker
# (PID 1 of its namespace, as root) or the zygote.
PROBE = r"""
import json, os, resource, signal, sys
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
view = {
    "limits": [resource.getrlimit(getattr(resource, "RLIMIT_" + n)) for n in ("CPU", "AS", "FSIZE", "CORE", "NPROC")],
    "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()],
    "cwd": os.getcwd(),
    "status": {k: status[k].strip() for k in ("NoNewPrivs", "SigIgn", "SigBlk")},
    "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
    "session_leader": os.getsid(0) == os.getpid(),
    "group_leader": os.getpgid(0) == os.getpid(),
    "nice": os.getpriority(os.PRIO_PROCESS, 0),
    "stdin": sys.stdin.read(),
    "environ": dict(os.environ),
    "sigpipe": str(signal.getsignal(signal.SIGPIPE)),
    "main": [__name__, __file__, sys.argv, sys.path[0]],
    "bytecode": [sys.pycache_prefix, sys.dont_write_bytecode],
}
print(json.dumps(view))
print("parent", os.getppid())
"""


@contextmanager
def zygote_switch(on: bool) -> Iterator[None]:
    # library_path() is resolved once per process: forget it on the way in and out
    saved = os.environ.get(zygote.ENV_SWITCH)
    os.environ[zygote.ENV_SWITCH] = "on" if on else "off"
    zygote.library_path.cache_clear()
    try:
        yield
    finally:
        if saved is None:
            del os.environ[zygote.ENV_SWITCH]
        else:
            os.environ[zygote.ENV_SWITCH] = saved
        zygote.library_path.cache_clear()


def run(
    programs: dict[str, str], *, on: bool, sandbox: str = "default", stdin: str = "", limits: ExecLimits = LIMITS
) -> dict[str, ExecResult]:
    with zygote_switch(on), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # sandbox "none" warns, as it should
        with Executor(workers=1, sandbox=sandbox, dedupe=False, progress=False) as ex:
            reqs = [ExecRequest(key, "python", text, limits, stdin=stdin) for key, text in programs.items()]
            return {r.key: r for r in ex.run(reqs)}


def test_zygote_library_is_built_here():
    # CI has a C compiler: a silent fall-back to forking in the worker costs ~0.35 ms a sample
    with zygote_switch(True):
        assert zygote.library_path() is not None


def _view(result: ExecResult) -> tuple[dict, int]:
    assert result.verdict is Verdict.PASSED, (result.message, result.stderr)
    view, parent = result.stdout.splitlines()
    work = json.loads(view)["cwd"]  # each worker's own (without a private /tmp: a temp dir)
    return json.loads(view.replace(json.dumps(work)[1:-1], "WORK")), int(parent.split()[1])


@pytest.mark.parametrize("sandbox", ["default", "none"])
def test_zygote_and_worker_forks_set_up_the_same_sample(sandbox):
    forked, forked_parent = _view(run({"probe": PROBE}, on=False, sandbox=sandbox, stdin="hello\n")["probe"])
    zygoted, zygote_parent = _view(run({"probe": PROBE}, on=True, sandbox=sandbox, stdin="hello\n")["probe"])
    # each worker has its own sandbox uid: the same kind of user, not the same number
    ids = [view.pop("ids") for view in (forked, zygoted)]
    for uid, euid, gid, egid, groups in ids:
        assert uid == euid == gid == egid
        if sandbox == "default" and os.geteuid() == 0:
            assert uid >= UID_BASE and groups == []
    assert zygoted == forked
    assert zygoted["limits"][:4] == [[3, 4], [2048 << 20] * 2, [1 << 20] * 2, [0, 0]]
    assert zygoted["fds"] == [0, 1, 2, 3, 4]  # stdin, stdout, stderr, result; 4: listdir's own
    assert zygoted["session_leader"] and zygoted["group_leader"] and zygoted["nice"] == 0
    assert zygoted["stdin"] == "hello\n" and zygoted["status"]["NoNewPrivs"] == "1"
    assert zygoted["environ"]["HOME"] == zygoted["cwd"]
    # the workers' bytecode cache is theirs: a sample reads bytecode beside the sources, writes none
    assert zygoted["bytecode"] == [None, True] and "PYTHONPYCACHEPREFIX" not in zygoted["environ"]
    # and the zygote really forked it: the worker did not
    assert zygote_parent != forked_parent
    if sandbox == "default" and os.geteuid() == 0:
        assert forked_parent == 1  # the worker is PID 1 of its namespace


def test_verdicts_and_messages_are_the_same_either_way():
    programs = {
        "pass": "def f(x):\n    return x + 1\nassert f(1) == 2\n",
        "assert": "def f(x):\n    return x\nassert f(1) == 2\n",
        "exception": "raise ValueError('boom')\n",
        "syntax": "def f(:\n    pass\n",
        "exit0": "import sys\nsys.exit(0)\n",
        "os_exit0": "import os\nos._exit(0)\n",
        "loop": "while True:\n    pass\n",
        "sleep": "import time\ntime.sleep(30)\n",
        "memory": "x = bytearray(4 << 30)\n",
        "surrogate": "s = '\\ud800'\nassert len(s) == 1\nprint('\udc80')\n",
        "traceback": "def g():\n    return 1 / 0\ng()\n",
        "source": "import inspect\ndef h():\n    return 3\nassert 'return 3' in inspect.getsource(h)\n",
        # too large for the worker to compile (worker.COMPILE_LIMIT): the sample's process reads
        # the text (from the zygote's C side) and compiles it
        "large": "x = '" + "a" * (300 * 1024) + "'\ndef g():\n    return len(x) // 0\ng()\n",
        # output still buffered at the end is written out, whatever the sample did to the streams
        "unflushed": "import sys\nsys.stdout.write('out, no newline')\nsys.stderr.write('err, no newline')\n",
        "no_stdout": "import sys\nprint('lost?', end='')\nsys.stdout = None\n",
        "del_stderr": "import sys\nprint('kept', end='')\ndel sys.stderr\n",
    }
    with_zygote = run(programs, on=True, limits=FAST)
    without = run(programs, on=False, limits=FAST)
    for key in programs:
        a, b = with_zygote[key], without[key]
        assert (a.verdict, a.message, a.exit_code, a.stdout) == (b.verdict, b.message, b.exit_code, b.stdout), key
        if key in ("traceback", "assert", "exception", "unflushed"):
            assert a.stderr == b.stderr, key
    assert with_zygote["pass"].passed and with_zygote["source"].passed
    assert {k for k, r in with_zygote.items() if r.verdict is Verdict.TIMEOUT} == {"loop", "sleep"}
    assert with_zygote["memory"].message.startswith("MemoryError")
    assert "return 1 / 0" in with_zygote["traceback"].stderr  # linecache fed, lazily
    # a traceback begins at the program's own first frame, as `python program.py` prints it
    frames = [line for line in with_zygote["traceback"].stderr.splitlines() if line.startswith("  File ")]
    assert [f.endswith(where) for f, where in zip(frames, (", in <module>", ", in g"), strict=True)] == [True, True]
    assert with_zygote["unflushed"].passed and with_zygote["unflushed"].stdout == "out, no newline"
    assert with_zygote["unflushed"].stderr == "err, no newline"
    assert with_zygote["no_stdout"].passed and with_zygote["del_stderr"].stdout == "kept"
    assert with_zygote["large"].message.startswith("ZeroDivisionError")
    assert "return len(x) // 0" in with_zygote["large"].stderr


def test_a_sample_cannot_kill_the_zygote_under_its_own_uid():
    # as root, samples run as the worker's sandbox uid and the zygote stays root's
    program = (
        "import os, signal\n"
        "try:\n"
        "    os.kill(os.getppid(), signal.SIGKILL)\n"
        "except PermissionError:\n"
        "    print('denied')\n"
    )
    out = run({"kill": program, "after": "assert 1 + 1 == 2\n"}, on=True)
    if os.geteuid() == 0:
        assert out["kill"].passed and out["kill"].stdout == "denied\n"
    assert out["after"].passed


def test_losing_the_zygote_costs_one_sample():
    # without a sandbox uid a sample can kill its parent: that sample is an error (its outcome
    # is unknown), and the next ones run in a new zygote
    programs = {f"before{i}": "assert True\n" for i in range(3)}
    programs["kill"] = "import os, signal, time\nos.kill(os.getppid(), signal.SIGKILL)\ntime.sleep(2)\n"
    programs.update({f"after{i}": "import os\nprint(os.getppid())\n" for i in range(3)})
    out = run(programs, on=True, sandbox="none")
    assert out["kill"].verdict is Verdict.ERROR and "lost its sample" in out["kill"].message
    assert all(out[f"before{i}"].passed and out[f"after{i}"].passed for i in range(3))
    parents = {out[f"after{i}"].stdout for i in range(3)}
    assert len(parents) == 1  # one new zygote served them all


def _wording(result: ExecResult) -> str:
    # A sample looping past its CPU limit is stopped by whichever check sees it first, the
    # kernel's (RLIMIT_CPU) or the monitor's count of its processes' CPU time: both say it timed
    # out, in their own words.
    return (
        "timed out: CPU time"
        if result.message.startswith("timed out") and "CPU time" in result.message
        else result.message
    )


def test_caps_warnings_and_stdin_are_the_same_either_way():
    # what the zygote's C monitor and the worker's own monitor each do with a sample's streams
    big_stdin = "".join(f"line {i}\n" for i in range(40_000))  # ~430 KB: more than a pipe holds
    programs = {
        "flood": "import sys\nwhile True:\n    sys.stdout.write('x' * 4096)\n",
        "flood_err": "import sys\nfor _ in range(1000):\n    sys.stderr.write('y' * 4096)\nassert False, 'after'\n",
        # a compile-time warning: the worker compiles, the sample's stderr must still show it
        "warning": "assert (1, 'always true')\nprint('ran')\n",
        "stdin": "import sys\ndata = sys.stdin.read()\nprint(len(data), data.count('\\n'))\n",
        "hash": "print(hash('slmbench'), list({'a', 'b', 'c', 'd'}))\n",
    }
    with_zygote = run(programs, on=True, stdin=big_stdin, limits=FAST)
    without = run(programs, on=False, stdin=big_stdin, limits=FAST)
    for key in programs:
        a, b = with_zygote[key], without[key]
        assert (a.verdict, _wording(a), a.stdout, a.stderr) == (b.verdict, _wording(b), b.stdout, b.stderr), key
    cap = FAST.max_output_bytes
    assert with_zygote["flood"].verdict is Verdict.TIMEOUT and len(with_zygote["flood"].stdout) == cap
    assert with_zygote["flood_err"].message == "AssertionError: after"
    assert len(with_zygote["flood_err"].stderr.encode()) <= cap
    assert with_zygote["warning"].passed and "SyntaxWarning" in with_zygote["warning"].stderr
    assert with_zygote["stdin"].stdout == f"{len(big_stdin)} 40000\n"
    # string hashing is seeded the same in every sample and every run
    again = run({"hash": programs["hash"]}, on=True)["hash"]
    assert again.stdout == with_zygote["hash"].stdout


def test_what_a_sample_leaves_behind_is_ended():
    # a daemon (double fork, own session) outlives its sample; under a sandbox uid (root) the
    # zygote (a child subreaper) or the worker ends it before the next sample, either way.
    # Without one (not root) nothing finds it: docs/security.md says so, and this checks that too.
    daemon = (
        "import os, time\n"
        "r, w = os.pipe()\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        os.write(w, str(os.getpid()).encode())\n"
        "        os.close(w)\n"
        "        time.sleep(60)\n"
        "    os._exit(0)\n"
        "os.close(w)\n"
        "print(os.read(r, 32).decode())\n"
    )
    # the next sample of the same worker sees its PID namespace (the host's, without one)
    look = "import os\nprint(' '.join(p for p in os.listdir('/proc') if p.isdigit()))\n"
    contained = os.geteuid() == 0
    for on in (True, False):
        out = run({"daemon": daemon, "look": look}, on=on)
        assert out["daemon"].passed and out["look"].passed, (out["daemon"].message, out["look"].message)
        pid = out["daemon"].stdout.strip()
        assert pid.isdigit()
        assert (pid in out["look"].stdout.split()) != contained, (on, pid)
        if not contained:
            os.kill(int(pid), 9)
