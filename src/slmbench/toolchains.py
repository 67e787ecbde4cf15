"""Language toolchains: what each language needs, whether it is here, and how to install it.

``slmbench doctor`` prints one row per requirement (executables from ``Language.tools`` plus the
libraries a language's ``checks()`` names: Boost headers, testify, the Rust crates, ...), with
its version and the exact command that installs what is missing. ``require()`` is the fail-fast
check a task makes before anything runs.

This module also owns the shared toolchain cache (a C++ precompiled header, the prebuilt Rust
crates, the Java launcher...): artifacts built once per toolchain version, under a lock so that
parallel workers build each one once.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from slmbench.data import cache_root as data_cache_root
from slmbench.errors import UserError


# ---- requirements ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    """A non-executable requirement (headers, a library, a package of another ecosystem)."""

    name: str
    probe: Callable[[], str | None]  # returns a version/detail when present, None when missing
    install: str


@dataclass(frozen=True)
class Status:
    language: str
    requirement: str
    ok: bool
    detail: str  # version or path when ok, "missing" otherwise
    install: str


def file_check(name: str, path: str, install: str) -> Check:
    return Check(name, lambda: path if Path(path).exists() else None, install)


def command_check(name: str, argv: Sequence[str], install: str, env: dict[str, str] | None = None) -> Check:
    """Present when ``argv`` exits 0 (with ``env`` added to the environment); the detail is its
    first output line."""

    def probe() -> str | None:
        if shutil.which(argv[0]) is None:
            return None
        try:
            full_env = {**os.environ, **env} if env else None
            out = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, env=full_env)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if out.returncode != 0:
            return None
        lines = (out.stdout or out.stderr).strip().splitlines()
        return lines[0][:80] if lines else "ok"

    return Check(name, probe, install)


def _print_native_helpers(console) -> None:
    # not requirements: without them the worker forks the samples itself, a little slower
    from slmbench.execution.spawner import helper_path
    from slmbench.execution.zygote import library_path

    helpers = [
        (
            "exec helper",
            helper_path(),
            "exec'ed programs start without a fork of the worker",
            "exec'ed programs are forked from the worker (~1.3 ms more each)",
        ),
        (
            "zygote",
            library_path(),
            "inline Python samples are forked by a C loop, not the worker",
            "the worker forks inline Python samples itself (~0.3 ms more each)",
        ),
    ]
    for name, path, using, without in helpers:
        if path is not None:
            console.print(f"{name}: {path} ({using})", markup=False, highlight=False)
        else:
            console.print(
                f"{name}: not available, {without}; a C compiler builds it: apt-get install -y gcc libc6-dev",
                markup=False,
                highlight=False,
            )


def language_status(name: str) -> list[Status]:
    from slmbench.execution.languages import LANGUAGES

    lang = LANGUAGES.get(name)()
    rows = []
    for tool in lang.tools:
        version = _twice(tool.version)
        rows.append(Status(name, tool.executable, version is not None, version or "missing", tool.install))
    checks = getattr(lang, "checks", None)
    for check in checks() if checks is not None else ():
        detail = _twice(check.probe)
        rows.append(Status(name, check.name, detail is not None, detail or "missing", check.install))
    return rows


def _twice(probe: Callable[[], str | None]) -> str | None:
    """A probe that failed is asked once more: on a loaded machine a version command can fail
    transiently (fork refused, timeout), and calling a toolchain missing then misleads."""
    found = probe()
    if found is None:
        time.sleep(0.5)
        found = probe()
    return found


def require(language: str) -> None:
    """Fail fast (UserError) when ``language``'s toolchain is incomplete, naming the install command."""
    missing = [s for s in language_status(language) if not s.ok]
    if missing:
        names = ", ".join(s.requirement for s in missing)
        commands = " && ".join(dict.fromkeys(s.install for s in missing if s.install))
        raise UserError(
            f"the {language} toolchain is incomplete: {names} missing",
            hint=f"install with: {commands}; `slmbench doctor` checks every language",
        )


def doctor(console=None, languages: Sequence[str] | None = None) -> bool:
    """Print every language's toolchain with versions and install commands; True when complete."""
    from rich.console import Console
    from rich.table import Table

    from slmbench.execution.languages import LANGUAGES

    console = console or Console()
    table = Table(title="toolchains", title_justify="left")
    for col in ("language", "requirement", "status", "version / detail", "install"):
        table.add_column(col)
    all_ok = True
    missing_installs: list[str] = []
    for name in languages or LANGUAGES.names():
        for s in language_status(name):
            all_ok &= s.ok
            if not s.ok and s.install:
                missing_installs.append(s.install)
            table.add_row(
                s.language,
                s.requirement,
                "[green]ok[/green]" if s.ok else "[red]missing[/red]",
                s.detail,
                "" if s.ok else s.install,
            )
    console.print(table)
    _print_native_helpers(console)
    if all_ok:
        console.print("every language toolchain is installed")
    else:
        console.print("install what is missing with:")
        for cmd in dict.fromkeys(missing_installs):
            console.print(f"  {cmd}", markup=False, highlight=False)
    return all_ok


# ---- the shared toolchain cache -------------------------------------------------------------
def cache_root() -> Path:
    """The shared toolchain cache (built support classes, crates, precompiled headers).

    Samples and builds run as a sandbox uid and must reach the artifacts, so this directory and
    the data cache above it are traversable by every uid (execute bit only: nobody else can list
    them), whatever umask created them (077 made them 0700, and C++ and PHP samples then failed
    to find their precompiled headers and ini files)."""
    return _traversable_dir(str(data_cache_root() / "toolchains"))


@functools.lru_cache(maxsize=16)
def _traversable_dir(path: str) -> Path:
    # once per path and process: the cache root is asked for on every Go build and run
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    for d in (root, root.parent):
        try:
            mode = d.stat().st_mode & 0o7777
            if mode & 0o011 != 0o011:
                d.chmod(mode | 0o011)
        except OSError:
            pass  # not ours to change: a sandboxed sample may then miss a toolchain artifact
    return root


def toolchain_fingerprint(*argv_lists: Sequence[str], extra: str = "") -> str:
    """Short hash of the versions printed by the given commands (keys cache entries by toolchain).
    Memoized per process: a version command can cost a JVM start."""
    return _fingerprint(tuple(tuple(a) for a in argv_lists), extra)


@functools.lru_cache(maxsize=64)
def _fingerprint(argv_lists: tuple[tuple[str, ...], ...], extra: str) -> str:
    h = hashlib.sha256(extra.encode())
    for argv in argv_lists:
        try:
            out = subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
            h.update((out.stdout + out.stderr).encode())
        except (OSError, subprocess.TimeoutExpired):
            h.update(b"missing")
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def cached_artifact(name: str, key: str, build: Callable[[Path], None]) -> Path:
    """The directory ``<cache>/<name>-<key>``, built once by ``build(tmp_dir)`` then renamed into
    place; concurrent callers (other workers, other runs) wait on a file lock and reuse it. What
    ``build`` leaves is made readable by every uid (samples and builds run as a sandbox uid)."""
    root = cache_root()
    final = root / f"{name}-{key}"
    if (final / ".complete").is_file():
        return final
    with _locked(root / f".{name}-{key}.lock"):
        if (final / ".complete").is_file():
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
        try:
            build(tmp)
            _readable_by_all(tmp)
            (tmp / ".complete").write_text("ok\n")
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


def _readable_by_all(root: Path) -> None:
    # mkdtemp makes the root 0700, and a strict umask does the same to what build wrote
    root.chmod(0o755)
    for path in root.rglob("*"):
        if path.is_symlink():
            continue
        mode = path.stat().st_mode & 0o7777
        executable = path.is_dir() or mode & 0o100
        path.chmod(mode | (0o555 if executable else 0o444))


def run_checked(
    argv: Sequence[str], cwd: Path, what: str, env: dict[str, str] | None = None, timeout: float = 600
) -> str:
    """Run a toolchain set-up command; a failure is a UserError that shows the tool's message."""
    try:
        out = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"{what} failed: {exc}", hint="run `slmbench doctor`") from None
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        raise UserError(f"{what} failed: {' | '.join(tail)}", hint="run `slmbench doctor`")
    return out.stdout
