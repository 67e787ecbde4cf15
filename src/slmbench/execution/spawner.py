"""Starting exec'ed samples without forking the worker: the exec helper (``exec_helper.c``).

A program that is exec'ed (every language but inline Python, and every compiler call of a build)
used to start as a fork of the worker: the fork copies the page tables of a ~14 MB Python
process, the child runs Python to apply its limits (each first write to a page of the worker is
a copy-on-write fault), and exec then tears that copied address space down. Measured on a
trivial bash script: ~1.3 ms of CPU in the child beyond bash's own ~1 ms, per sample.

Instead the worker starts a small static C program with ``posix_spawn`` (glibc: a vfork, the
parent's memory is not copied), the sample's four fds already in place; the helper applies the
same set-up as the forked path (own session, priority back to 0, rlimits, work dir, the
sandbox uid, no new privileges, default signal dispositions, no other fds) and execs the
program. Limits cannot be applied from outside instead: lowering a child's hard limits with
prlimit(2) needs CAP_SYS_RESOURCE, which containers' root often lacks (this machine's does).

The helper is compiled once per C compiler and source into the toolchain cache and checked by
running it; without a C compiler (or when that check fails) the forked path is used, and
``SLMBENCH_EXEC_HELPER=off`` forces it.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from slmbench.errors import UserError
from slmbench.execution import native

SOURCE = Path(__file__).with_name("exec_helper.c")
ENV_SWITCH = "SLMBENCH_EXEC_HELPER"


@functools.cache
def helper_path() -> str | None:
    """The built helper, or None: use the forked path (module doc)."""
    if native.switched_off(ENV_SWITCH):
        return None
    try:
        # static: nothing to load at each start (~0.3 ms less than a dynamic one); dynamic where
        # the C library has no static archive
        path = native.build("exec-helper", SOURCE, "slmbench-exec", [["-static"], []])
        return str(path) if path is not None and _works(str(path)) else None
    except (OSError, UserError, subprocess.SubprocessError):
        return None


def _works(path: str) -> bool:
    """The helper starts a program with its limits in place (a guard against a helper that
    builds but misbehaves on this system)."""
    argv = helper_argv(
        path,
        "/bin/sh",
        ["sh", "-c", "ulimit -t"],
        work_dir="/",
        uid=None,
        cpu_s=7,
        memory_bytes=1 << 33,
        file_bytes=1 << 20,
        processes=4096,
    )
    try:
        res = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return res.returncode == 0 and res.stdout.strip() == "7"


def helper_argv(
    helper: str,
    exe: str,
    argv: list[str],
    *,
    work_dir: str,
    uid: int | None,
    cpu_s: int,
    memory_bytes: int,
    file_bytes: int,
    processes: int,
) -> list[str]:
    return [
        helper,
        str(cpu_s),
        str(memory_bytes),
        str(file_bytes),
        str(processes),
        str(uid if uid is not None else -1),
        work_dir,
        exe,
        *argv,
    ]
