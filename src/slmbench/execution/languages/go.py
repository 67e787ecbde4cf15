"""Go: ``go test -c`` into a test binary, run sandboxed.

Tests import testify, taken offline from Debian's ``golang-github-stretchr-testify-dev``
(``/usr/share/gocode``, GOPATH mode, no module proxy). Every build shares one GOCACHE in the
toolchain cache, so the standard library and testify are compiled once, not per program; vet is
off (it is not part of the verdict and costs a second per program).

``go`` needs a writable GOCACHE, which a sandboxed build user cannot have without letting
samples poison it, so the build runs as the worker (with a timeout). It runs no program code:
cgo is off, and ``go test -c`` only compiles and links. The test binary runs sandboxed.

The harness token: the build adds a second test file with a ``TestMain`` that runs the tests
and writes the token to fd 3 only when they all passed and returned (``os.Exit(0)`` inside a
solution cannot pass), so no trailer needs to be appended to the program.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from slmbench.execution.languages.base import (
    BuildOutput,
    CommandRunner,
    Language,
    Outcome,
    Tool,
    first_error_line,
    judge_by_markers,
)
from slmbench.toolchains import Check, cache_root, file_check
from slmbench.types import Verdict

INSTALL = "apt-get install -y golang-go golang-github-stretchr-testify-dev"
GOPATH = "/usr/share/gocode"
TESTIFY = f"{GOPATH}/src/github.com/stretchr/testify/assert"

TEST_MAIN = """package main

import (
\t"os"
\t"syscall"
\t"testing"
)

func TestMain(m *testing.M) {
\tcode := m.Run()
\tif code == 0 {
\t\tvar st syscall.Stat_t
\t\tif syscall.Fstat(3, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFIFO {
\t\t\tsyscall.Write(3, []byte(os.Getenv("SLMBENCH_TOKEN")))
\t\t}
\t}
\tos.Exit(code)
}
"""


def go_cache() -> Path:
    path = cache_root() / "go-build"
    path.mkdir(parents=True, exist_ok=True)
    return path


class Go(Language):
    name = "go"
    source_file = "main_test.go"
    tools = (Tool("go", ("version",), "apt-get install -y golang-go"),)

    def checks(self) -> list[Check]:
        return [
            file_check("testify (Debian, offline)", TESTIFY, "apt-get install -y golang-github-stretchr-testify-dev")
        ]

    def environment(self) -> Mapping[str, str]:
        return {
            "GO111MODULE": "off",
            "GOPATH": GOPATH,
            "GOCACHE": str(go_cache()),
            "GOFLAGS": "",
            "GOPROXY": "off",
            "GOTOOLCHAIN": "local",
            "CGO_ENABLED": "0",
        }

    def build_argv(self, out_dir: Path) -> list[str]:
        return ["go", "test", "-c", "-vet=off", "-ldflags=-s -w", "-o", str(out_dir / "test.bin")]

    def build_commands(self, src: Path, out_dir: Path) -> Sequence[Sequence[str]]:
        return [self.build_argv(out_dir)]

    def build(self, src: Path, out_dir: Path, run: CommandRunner, timeout_s: float) -> BuildOutput:
        pkg = out_dir / "pkg"
        pkg.mkdir(exist_ok=True)
        shutil.copyfile(src, pkg / "main_test.go")
        (pkg / "zz_slmbench_main_test.go").write_text(TEST_MAIN)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(out_dir),
            "TMPDIR": str(out_dir),
            **self.environment(),
        }
        start = time.perf_counter()
        try:
            res = subprocess.run(
                self.build_argv(out_dir),
                cwd=pkg,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                preexec_fn=_build_limits,
            )
        except subprocess.TimeoutExpired:
            return BuildOutput(False, f"compilation timed out after {timeout_s:.0f} s", time.perf_counter() - start)
        seconds = time.perf_counter() - start
        shutil.rmtree(pkg, ignore_errors=True)
        if res.returncode != 0:
            return BuildOutput(False, _go_error(res.stderr + res.stdout), seconds)
        (out_dir / "test.bin").chmod(0o755)
        return BuildOutput(True, "", seconds)

    def run_command(self, src: Path, out_dir: Path) -> Sequence[str]:
        return [str(out_dir / "test.bin"), "-test.v=false"]

    def judge(self, outcome: Outcome) -> tuple[Verdict, str]:
        verdict, message = judge_by_markers(outcome, ("Error Trace:", "--- FAIL"), ("panic:", "fatal error:"))
        if verdict is Verdict.FAILED and "panic:" in outcome.stdout + outcome.stderr:
            # a panic inside a test also prints --- FAIL: it crashed rather than failed an assertion
            panic = next(ln for ln in (outcome.stdout + "\n" + outcome.stderr).splitlines() if "panic:" in ln)
            return Verdict.ERROR, panic.strip()[:500]
        if verdict is Verdict.FAILED:
            msg = _assertion_message(outcome.stdout + "\n" + outcome.stderr)
            return verdict, msg or message
        return verdict, message


def _build_limits() -> None:  # pragma: no cover - runs in the build child
    os.setsid()
    gib = 1 << 30
    resource.setrlimit(resource.RLIMIT_AS, (8 * gib, 8 * gib))
    resource.setrlimit(resource.RLIMIT_FSIZE, (512 << 20, 512 << 20))


def _go_error(text: str) -> str:
    for line in text.splitlines():
        s = line.strip()
        if s and not s.startswith("#") and not s.startswith("FAIL"):
            return s[:500]
    return first_error_line(text)


def _assertion_message(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines()]
    for i, ln in enumerate(lines):
        if ln.startswith("Error:") and i + 1 < len(lines):
            return " ".join(x for x in lines[i : i + 3] if x)[:500]
    return ""
