"""The exec helper (spawner.py): an exec'ed program started through it gets exactly the set-up
of the forked path (limits, user, session, work dir, signals, fds), and it really is in use."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from slmbench.execution import sandbox
from slmbench.execution.spawner import helper_path
from slmbench.types import ExecLimits

# what a sample can see of its own set-up (bash's ulimit: CPU s, address space KiB, file blocks
# of 1 KiB, core blocks, processes)
PROBE = (
    'echo "limits $(ulimit -t) $(ulimit -v) $(ulimit -f) $(ulimit -c) $(ulimit -u)"; '
    'echo "user $(id -u) $(id -g) groups=$(id -G)"; '
    'echo "cwd $(pwd)"; '
    "grep -E '^(NoNewPrivs|SigIgn|SigBlk):' /proc/self/status; "
    'echo "fds $(ls /proc/self/fd | sort -n | tr "\\n" " ")"; '
    'echo "session leader $(( $(ps -o sid= -p $$) == $$ ))"; '
    'echo "nice $(ps -o ni= -p $$)"; '
    'read line; echo "stdin $line"; echo token >&3'
)


def test_helper_is_built_and_used_here():
    # CI has a C compiler: a silent fall-back to the forked path would cost ~1.3 ms a sample
    assert helper_path() is not None


def _probe(tmp_path: Path, helper: str | None, uid: int | None) -> sandbox.Observation:
    work = tmp_path / ("helper" if helper else "fork")
    work.mkdir()
    if uid is not None:
        os.chown(work, uid, uid)
    limits = ExecLimits(timeout_s=3.0, memory_mb=2048, max_file_bytes=1 << 20, max_processes=64)
    env = sandbox.sample_environment(str(work), {})
    child = sandbox.Child(
        exec_args=("/bin/bash", ["bash", "-c", PROBE], env),
        helper=helper,
        work_dir=str(work),
        env=None,
        limits=limits,
        isolation=sandbox.Isolation(level="default", sandbox_uid=uid),
        stdin_data=b"hello\n",
        uid=uid,
    )
    return child.wait()


def test_helper_and_fork_paths_set_up_the_same_sample(tmp_path):
    uid = sandbox.UID_BASE + os.getpid() if os.geteuid() == 0 else None
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in the worker
    old_nice = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        if os.geteuid() == 0:
            os.setpriority(os.PRIO_PROCESS, 0, -5)  # as in the worker
        fork = _probe(tmp_path, None, uid)
        spawned = _probe(tmp_path, helper_path(), uid)
    finally:
        signal.signal(signal.SIGINT, previous)
        if os.geteuid() == 0:
            os.setpriority(os.PRIO_PROCESS, 0, old_nice)
    assert fork.exit_code == 0 and spawned.exit_code == 0, (fork.stderr, spawned.stderr)
    lines = spawned.stdout.decode().replace(str(tmp_path / "helper"), "WORK").splitlines()
    assert lines == fork.stdout.decode().replace(str(tmp_path / "fork"), "WORK").splitlines()
    assert spawned.result == fork.result == b"token\n"
    got = dict(line.split(" ", 1) if " " in line else (line, "") for line in lines)
    assert got["limits"] == f"3 {2048 * 1024} 1024 0 64"
    if uid is not None:
        assert got["user"] == f"{uid} {uid} groups={uid}"
    assert got["cwd"] == "WORK"
    assert got["session"] == "leader 1"
    assert got["nice"].strip() == "0"
    assert got["stdin"] == "hello"
    status = {
        k.rstrip(":"): v.strip() for k, v in (line.split(None, 1) for line in lines if line.startswith(("No", "Sig")))
    }
    assert status == {"NoNewPrivs": "1", "SigIgn": "0000000000000000", "SigBlk": "0000000000000000"}
    # 0-3 and what ls itself opens to list them: nothing of the parent's leaks in
    assert got["fds"].split()[:4] == ["0", "1", "2", "3"] and len(got["fds"].split()) <= 5


@pytest.mark.parametrize("helper", [True, False])
def test_limits_hold_on_both_paths(tmp_path, helper):
    # a CPU hog ends at its CPU limit, a file past the size limit fails, on either path
    work = tmp_path / "w"
    work.mkdir()
    limits = ExecLimits(timeout_s=1.0, wall_timeout_s=10.0, max_file_bytes=4096)
    child = sandbox.Child(
        exec_args=(
            "/bin/bash",
            [
                "bash",
                "-c",
                "head -c 100000 /dev/zero > big 2>/dev/null; echo size $(stat -c %s big); while :; do :; done",
            ],
            sandbox.sample_environment(str(work), {}),
        ),
        helper=helper_path() if helper else None,
        work_dir=str(work),
        env=None,
        limits=limits,
        isolation=sandbox.Isolation(level="none"),
    )
    obs = child.wait()
    assert obs.stdout.decode().split() == ["size", "4096"]
    assert obs.signal in (signal.SIGXCPU, signal.SIGKILL) and 0.9 < obs.cpu_s < 3.0, (obs.exit_code, obs.cpu_s)


def test_a_setup_failure_is_reported_not_run(tmp_path):
    # a work dir that does not exist: the helper stops with status 125 and says why
    child = sandbox.Child(
        exec_args=("/bin/true", ["true"], {}),
        helper=helper_path(),
        work_dir=str(tmp_path / "missing"),
        env=None,
        limits=ExecLimits(timeout_s=1.0),
        isolation=sandbox.Isolation(level="none"),
    )
    obs = child.wait()
    assert obs.exit_code == 125 and b"sandbox setup failed: chdir" in obs.stderr
