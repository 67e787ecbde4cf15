"""Go: the test binary built by Go's compiler and linker directly, run sandboxed.

Tests import testify, taken offline from Debian's ``golang-github-stretchr-testify-dev``
(``/usr/share/gocode``, GOPATH mode, no module proxy). Every build shares one GOCACHE in the
toolchain cache, so the standard library and testify are compiled once, not per program; vet is
off (it is not part of the verdict and costs a second per program).

The build does what ``go test -c`` does, without the ``go`` command: of its ~0.3 s per program
about half is the command itself (loading and hashing ~240 packages to find them up to date).
Once per Go version, ``go list -export`` gives the compiled export data of the standard library
and testify (copied out of GOCACHE where they live there) as an importcfg. Per program: compile
the test files as one package, compile a generated test main listing its ``TestXxx`` functions
(go test's own rule: ``Test`` then no lower-case letter), link. Whatever this fast path does not
cover, or may read differently from ``go test`` (an import outside that set, ``Example``/``Fuzz``
functions, any failure of the generated test main), is left to ``go test -c`` itself, so
verdicts and compile errors stay those of ``go test``.

The link is most of a build, and it grows with the packages the test binary imports. testify's
``assert`` imports net/http (and through it crypto/tls, x509, ...: 137 packages instead of 57)
for its ``HTTP*`` assertions alone. The fast path links an ``assert`` compiled without them
(``http_assertions.go`` left out, the ``HTTP*`` wrappers cut from the generated forwarders,
through ``go list -overlay``; every other function is testify's own source): ~105 -> ~66 ms per
link. A program that uses an ``HTTP*`` assertion fails that compile and goes to ``go test -c``
with the whole package. Should the cut package not compile (another testify), the whole one is used.

``go`` needs a writable GOCACHE, which a sandboxed build user cannot have without letting
samples poison it, so the build runs as the worker (with a timeout). It runs no program code:
cgo is off, and compiling and linking run nothing. The test binary runs sandboxed.

The harness token: the build adds a second test file with a ``TestMain`` that runs the tests
and writes the token to fd 3 only when they all passed and returned (``os.Exit(0)`` inside a
solution cannot pass), so no trailer needs to be appended to the program.
"""

from __future__ import annotations

import functools
import json
import os
import re
import resource
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from slmbench.errors import UserError
from slmbench.execution.languages.base import (
    BuildOutput,
    CommandRunner,
    Language,
    Outcome,
    Tool,
    first_error_line,
    judge_by_markers,
)
from slmbench.toolchains import Check, cache_root, cached_artifact, file_check, run_checked, toolchain_fingerprint
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


TEST_PACKAGE = "slmbench/sample"  # the import path the program's test package is compiled as
TESTMAIN = """package main

import (
\tslmbench_test "{package}"
\t"testing"
\t"testing/internal/testdeps"
)

var tests = []testing.InternalTest{{
{tests}}}

func main() {{
\tm := testing.MainStart(testdeps.TestDeps{{}}, tests, nil, nil, nil)
\tslmbench_test.TestMain(m)
}}
"""
# Liberal on purpose: a name found in a comment or string only makes the test main fail to
# compile, and then ``go test -c`` decides; a test missed would go unrun.
_TEST_FUNC = re.compile(r"\bfunc\s+(Test\w*)\s*[(\[]")
_NOT_FAST = re.compile(r"\bfunc\s+(?:Example|Fuzz)")  # go test runs these too: leave them to it
_IMPORT_FAILED = ("could not import", "can't find import", "cannot find package")
# a top-level HTTP* function or *Assertions method of testify's assert, with its doc comment;
# gofmt'd, so the body ends at the first "}" in column 0
_HTTP_DECL = re.compile(r"(?:^//[^\n]*\n)*^func (?:\(\w+ \*Assertions\) )?HTTP\w*\(.*?^}\n", re.M | re.S)
# the fast path's assert lacks exactly these: a program using one goes to go test -c
_HTTP_MISSING = re.compile(r"undefined: assert\.HTTP|\.HTTP\w* undefined")


def go_cache() -> Path:
    path = cache_root() / "go-build"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _go_env(extra: Mapping[str, str]) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **extra}


@functools.cache
def tool_dir() -> str:
    out = subprocess.run(["go", "env", "GOTOOLDIR"], capture_output=True, text=True, timeout=60)
    return out.stdout.strip()


def without_http_assertions(source: str) -> str:
    """A file of testify's assert without its ``HTTP*`` functions and methods, and without the
    net/http and net/url imports once nothing else uses them."""
    text = _HTTP_DECL.sub("", source)
    for name, path in (("http", "net/http"), ("url", "net/url")):
        for spec in (f'\t{name} "{path}"\n', f'\t"{path}"\n'):
            rest = text.replace(spec, "", 1)
            if spec in text and not re.search(rf"\b{name}\.", rest):
                text = rest
    return text


def _http_free_overlay(tmp: Path) -> Path | None:
    """A ``go build -overlay`` file compiling testify's assert without the HTTP assertions
    (module doc); None when there is nothing to cut."""
    assert_dir = Path(TESTIFY)
    replace: dict[str, str] = {}
    for src in sorted(assert_dir.glob("*.go")):
        if src.name.endswith("_test.go"):
            continue
        if src.name == "http_assertions.go":
            replace[str(src)] = ""  # deleted
            continue
        text = src.read_text(encoding="utf-8")
        cut = without_http_assertions(text)
        if cut != text:
            copy = tmp / "overlay" / src.name
            copy.parent.mkdir(exist_ok=True)
            copy.write_text(cut, encoding="utf-8")
            replace[str(src)] = str(copy)
    if not replace:
        return None
    path = tmp / "overlay" / "overlay.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"Replace": replace}))
    return path


def export_dir() -> Path:
    """``<cache>/go-exports-<key>`` with ``importcfg.in`` (``packagefile path=file`` lines, the
    files relative to this directory or absolute in GOROOT) for the standard library and
    testify's assert (without its HTTP assertions where that compiles: see the module doc, and
    ``testify.txt`` says which), built with the environment of our builds (cgo off)."""
    key = toolchain_fingerprint(["go", "version"], extra=TESTIFY + "v2")

    def build(tmp: Path) -> None:
        env = _go_env({**Go().environment(), "HOME": str(tmp), "TMPDIR": str(tmp)})
        argv = ["go", "list", "-export", "-deps", "-f", "{{if .Export}}{{.ImportPath}}={{.Export}}{{end}}"]
        packages = ["std", "github.com/stretchr/testify/assert"]
        overlay = _http_free_overlay(tmp)
        listing, kind = None, "whole"
        if overlay is not None:
            try:
                listing = run_checked([*argv, f"-overlay={overlay}", *packages], tmp, "compiling testify", env=env)
                kind = "without HTTP assertions"
            except UserError:
                listing = None  # a testify this cut does not fit: the whole package it is
            shutil.rmtree(overlay.parent, ignore_errors=True)
        if listing is None:
            listing = run_checked([*argv, *packages], tmp, "listing Go's compiled packages", env=env)
        (tmp / "testify.txt").write_text(kind + "\n")
        (tmp / "pkg").mkdir()
        lines = []
        for i, row in enumerate(listing.splitlines()):
            path, _, export = row.partition("=")
            if not export:
                continue
            if Path(export).is_relative_to(go_cache()):  # go trims its cache: keep a copy
                shutil.copyfile(export, tmp / "pkg" / f"{i}.a")
                export = f"pkg/{i}.a"
            lines.append(f"packagefile {path}={export}\n")
        (tmp / "importcfg.in").write_text("".join(lines))

    return cached_artifact("go-exports", key, build)


def testify_build() -> str:
    """Which testify assert the fast path links: "without HTTP assertions" or "whole"."""
    return (export_dir() / "testify.txt").read_text().strip()


@functools.cache
def base_importcfg() -> str:
    root = export_dir()
    lines = []
    for line in (root / "importcfg.in").read_text().splitlines():
        path, _, export = line.partition("=")
        lines.append(f"{path}={export if export.startswith('/') else root / export}\n")
    return "".join(lines)


def go_test_functions(source: str) -> list[str] | None:
    """The test functions ``go test`` would run, in order; None when the fast path must not
    be used (examples or fuzz targets, which go test runs too)."""
    if _NOT_FAST.search(source):
        return None
    names = []
    for name in _TEST_FUNC.findall(source):
        # go test: "Test" alone, or followed by anything but a lower-case letter; TestMain(m) is the hook
        if name != "TestMain" and (len(name) == 4 or not name[4].islower()) and name not in names:
            names.append(name)
    return names


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
        env = _go_env({"HOME": str(out_dir), "TMPDIR": str(out_dir), **self.environment()})
        start = time.perf_counter()
        try:
            fast = self._build_direct(src.read_text(encoding="utf-8", errors="replace"), pkg, out_dir, env, timeout_s)
            if fast is not None:
                return BuildOutput(fast.ok, fast.message, time.perf_counter() - start)
            res = _run(self.build_argv(out_dir), pkg, env, timeout_s - (time.perf_counter() - start))
        except subprocess.TimeoutExpired:
            return BuildOutput(False, f"compilation timed out after {timeout_s:.0f} s", time.perf_counter() - start)
        finally:
            shutil.rmtree(pkg, ignore_errors=True)
        seconds = time.perf_counter() - start
        if res.returncode != 0:
            return BuildOutput(False, _go_error(res.stderr + res.stdout), seconds)
        (out_dir / "test.bin").chmod(0o755)
        return BuildOutput(True, "", seconds)

    def _build_direct(
        self, source: str, pkg: Path, out_dir: Path, env: Mapping[str, str], timeout_s: float
    ) -> BuildOutput | None:
        """compile + compile test main + link; None: let ``go test -c`` build it."""
        tests = go_test_functions(source)
        if tests is None:
            return None
        try:
            cfg = base_importcfg()
        except Exception:  # noqa: BLE001 - no export data (odd Go install): the go command copes
            return None
        tools = tool_dir()
        # the compiler and linker are short-lived Go programs: without GC ~15% faster, ~5% more
        # memory (the program's own run keeps the default: its environment is not this one)
        env = {**env, "GOGC": "off"}
        deadline = time.perf_counter() + timeout_s
        # apart from pkg/: should go test -c take over, it must find only the program's files there
        work = out_dir / "direct"
        work.mkdir(exist_ok=True)
        try:
            cfg_file = work / "importcfg"
            cfg_file.write_text(cfg + f"packagefile {TEST_PACKAGE}={work / 'sample.a'}\n")
            compile_test = [
                f"{tools}/compile", "-o", str(work / "sample.a"), "-p", TEST_PACKAGE, "-trimpath", str(pkg),
                "-complete", "-importcfg", str(cfg_file), "-pack", "main_test.go", "zz_slmbench_main_test.go",
            ]  # fmt: skip
            res = _run(compile_test, pkg, env, deadline - time.perf_counter())  # in pkg/: messages name main_test.go
            if res.returncode != 0:
                out = res.stdout + res.stderr
                if any(m in out for m in _IMPORT_FAILED) or _HTTP_MISSING.search(out):
                    return None  # a package (or HTTP assertion) outside the prebuilt set: go test finds it
                return BuildOutput(False, _go_error(res.stdout + res.stderr))
            listed = "".join(f'\t{{"{name}", slmbench_test.{name}}},\n' for name in tests)
            (work / "testmain.go").write_text(TESTMAIN.format(package=TEST_PACKAGE, tests=listed))
            steps = (
                [f"{tools}/compile", "-o", "testmain.a", "-p", "main", "-complete", "-importcfg", "importcfg",
                 "-pack", "testmain.go"],
                [f"{tools}/link", "-o", str(out_dir / "test.bin"), "-importcfg", "importcfg", "-buildmode=exe",
                 "-s", "-w", "testmain.a"],
            )  # fmt: skip
            for argv in steps:
                if _run(argv, work, env, deadline - time.perf_counter()).returncode != 0:
                    (out_dir / "test.bin").unlink(missing_ok=True)
                    return None  # e.g. a TestXxx of the wrong signature: go test's own message
            (out_dir / "test.bin").chmod(0o755)
            return BuildOutput(True, "")
        finally:
            shutil.rmtree(work, ignore_errors=True)

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


def _run(argv: Sequence[str], cwd: Path, env: Mapping[str, str], timeout_s: float) -> subprocess.CompletedProcess:
    if timeout_s <= 0:
        raise subprocess.TimeoutExpired(list(argv), 0)
    return subprocess.run(
        list(argv), cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout_s, preexec_fn=_build_limits
    )


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
