"""Content-hash build cache: each distinct program is compiled once, shared by all workers.

Layout: ``<root>/builds/<language>/<key[:2]>/<key>/`` holds the source file, the build
outputs and ``build.json`` (ok, message, seconds; for a member of a shared build, which member
and where its lines start; its outputs are hard links to the shared build's). A build happens in a private temporary
directory and is published with one atomic rename, under a per-key file lock, so concurrent
workers (or executors) never see a half-written build and never build the same key twice.
Failed builds are cached too (a compile error is a property of the program), except
timeouts and failures whose compiler output does not name the program, which may be the
machine's fault.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from slmbench.data import cache_root
from slmbench.execution.languages.base import BuildOutput


def runner_fingerprint(obj: object) -> str:
    """Hash of the source file defining ``obj``'s class."""
    try:
        return hashlib.sha256(Path(inspect.getfile(type(obj))).read_bytes()).hexdigest()[:16]
    except (OSError, TypeError):
        return ""


def default_cache_root() -> Path:
    return cache_root()


def build_key(language: str, program: str, extra_files: Mapping[str, str], runner: str = "") -> str:
    """``runner`` fingerprints the code that builds (the language module): a changed runner
    never reuses builds made by the old one."""
    h = hashlib.sha256()
    for part in (language, runner, program):
        h.update(part.encode())
        h.update(b"\0")
    for name in sorted(extra_files):
        h.update(name.encode() + b"\0" + extra_files[name].encode() + b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class Build:
    out_dir: Path
    src: Path
    output: BuildOutput
    cached: bool  # found in the cache, not built by this call


class BuildCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.builds = self.root / "builds"
        self.locks = self.root / "locks"
        self.staging = self.root / "staging"
        for d in (self.builds, self.locks, self.staging):
            d.mkdir(parents=True, exist_ok=True)

    def entry(self, language: str, program: str, extra_files: Mapping[str, str], runner: str = "") -> Path:
        return self._final(language, build_key(language, program, extra_files, runner))

    def has(self, language: str, program: str, extra_files: Mapping[str, str], runner: str = "") -> bool:
        return _load(self.entry(language, program, extra_files, runner)) is not None

    def publish(
        self,
        language: str,
        source_file: str,
        program: str,
        outputs: Path,
        output: BuildOutput,
        runner: str = "",
    ) -> bool:
        """Enter ``program`` as built by a shared build: its entry holds its own source and hard
        links to the files of ``outputs`` (the shared build's directory, whose own source file
        is left out), and ``output.member`` says which member it is. False when it was there."""
        final = self.entry(language, program, {}, runner)
        with self._staging(final) as staging:
            if staging is None:
                return False
            for dirpath, dirnames, filenames in os.walk(outputs):
                rel = Path(dirpath).relative_to(outputs)
                for name in dirnames:
                    (staging / rel / name).mkdir()
                for name in filenames:
                    if rel == Path(".") and name == source_file:
                        continue
                    _link_or_copy(Path(dirpath, name), staging / rel / name)
            write_files(staging, {source_file: program})
            _enter(staging, final, output)
            return True

    def get(
        self,
        language: str,
        source_file: str,
        program: str,
        extra_files: Mapping[str, str],
        build: Callable[[Path, Path], BuildOutput],
        prepare: Callable[[Path], None] | None = None,
        runner: str = "",
    ) -> Build:
        """The build of ``program``: from the cache, or made now by ``build(src, out_dir)``.

        ``prepare(staging_dir)`` runs before the build (e.g. to hand the directory to the
        unprivileged build user)."""
        final = self.entry(language, program, extra_files, runner)
        found = _load(final)
        if found is None:
            with self._staging(final) as staging:
                if staging is not None:
                    os.chmod(staging, 0o755)
                    write_files(staging, {source_file: program, **extra_files})
                    if prepare is not None:
                        prepare(staging)
                    output = build(staging / source_file, staging)
                    if output.ok or _about_the_program(output, source_file):
                        _enter(staging, final, output)
                        return Build(final, final / source_file, output, cached=False)
                    return Build(staging, staging / source_file, output, cached=False)
            found = _load(final)  # made meanwhile by another worker or executor
            assert found is not None
        return Build(final, final / source_file, found, cached=True)

    def _final(self, language: str, key: str) -> Path:
        return self.builds / language / key[:2] / key

    @contextlib.contextmanager
    def _staging(self, final: Path) -> Iterator[Path | None]:
        """Under the entry's lock: a fresh staging directory for it, or None when the entry is
        there already. What is left of the directory afterwards is removed."""
        key = final.name
        with open(self.locks / f"{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if _load(final) is not None:
                yield None
                return
            staging = Path(tempfile.mkdtemp(prefix=f"{key[:16]}.", dir=self.staging))
            try:
                yield staging
            finally:
                if staging.exists():
                    shutil.rmtree(staging, ignore_errors=True)


def _enter(staging: Path, final: Path, output: BuildOutput) -> None:
    """Publish a finished staging directory as the entry ``final``, in one rename."""
    (staging / "build.json").write_text(json.dumps(_meta(output)))
    _make_readable(staging)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.rename(staging, final)


def _load(final: Path) -> BuildOutput | None:
    try:
        meta = json.loads((final / "build.json").read_text())
    except (OSError, ValueError):
        return None
    member = meta.get("member")
    return BuildOutput(
        ok=bool(meta["ok"]),
        message=str(meta.get("message", "")),
        seconds=float(meta["seconds"]),
        member=None if member is None else int(member),
        line_offset=int(meta.get("line_offset", 0)),
    )


def _about_the_program(failed: BuildOutput, source_file: str) -> bool:
    """A failed build is cached when the failure is the program's: not a timeout (the machine
    may have been busy), and a compiler output that names the program's file (one that does not,
    such as a toolchain that cannot start, is the machine's; built again next time)."""
    if failed.message.startswith("compilation timed out"):
        return False
    return not failed.log or source_file in failed.log


def _meta(output: BuildOutput) -> dict[str, object]:
    meta: dict[str, object] = {"ok": output.ok, "message": output.message, "seconds": output.seconds}
    if output.member is not None:
        meta["member"] = output.member
        meta["line_offset"] = output.line_offset
    return meta


def _link_or_copy(src: Path, dst: Path) -> None:
    # a shared build's executable is linked into every member's entry, not copied
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _make_readable(root: Path) -> None:
    # Samples run as another (unprivileged) uid and must read and execute the build outputs,
    # but never modify them (a sample could otherwise poison the cache for later runs).
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                mode = os.stat(p).st_mode
                os.chmod(p, 0o755 if mode & 0o111 else 0o644)
    if os.geteuid() == 0:
        for dirpath, _dirnames, filenames in os.walk(root):
            os.lchown(dirpath, 0, 0)
            for name in filenames:
                os.lchown(os.path.join(dirpath, name), 0, 0)


def write_files(root: Path, files: Mapping[str, str]) -> None:
    """Write ``files`` (relative paths) under ``root``; refuse paths that would escape it."""
    base = root.resolve()
    for name, text in files.items():
        target = (root / name).resolve()
        if target == base or base not in target.parents:
            raise ValueError(f"extra file {name!r} would be written outside the work dir")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
