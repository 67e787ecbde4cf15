"""Rust: ``rustc --test`` against crates prebuilt once, run as a libtest binary.

HumanEvalPack's Rust prompts ``use`` rand, regex and md5. crates.io is not reachable, so the
crates come from Debian's ``librust-*-dev`` sources (``/usr/share/cargo/registry``, a cargo
directory source): they are compiled once per rustc version into the shared toolchain cache
(``cargo build --offline``) and each program links them with ``--extern``, one ``rustc`` call
of a fraction of a second instead of a cargo project per program.

The prompts were written against rand 0.4 (``gen_range(low, high)``, as in the BigCode harness's
Cargo.toml); Debian ships rand 0.8. ``rand`` is therefore a small compatibility crate of ours
over rand 0.8 with the 0.4 call forms the tests and their solutions use (``thread_rng``,
``random``, ``Rng::gen``, two-argument ``Rng::gen_range``).

The token: the trailer adds a test whose name sorts after every other test; with
``--test-threads=1`` libtest runs tests in name order, so it runs last, and the token counts
only with exit status 0 (every test passed). A solution that calls ``process::exit(0)`` stops
the run before it.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from slmbench.execution.languages.base import (
    MEMBER_PREFIX,
    Language,
    Outcome,
    SharedSource,
    Tool,
    judge_by_markers,
)
from slmbench.toolchains import Check, cached_artifact, run_checked, toolchain_fingerprint
from slmbench.types import Verdict

REGISTRY = "/usr/share/cargo/registry"
CRATES = {"rand": "0.8", "regex": "1", "md5": "0.7"}
# extern name -> library file stem built in the cache
EXTERNS = {"rand": "slmbench_rand", "regex": "regex", "md5": "md5"}

RAND_COMPAT = """//! rand 0.4 call forms over rand 0.8 (written for slmbench).
//! thread_rng() is seeded with a fixed value, as the Python tests seed random.Random(42): a test
//! that draws random inputs (Rust/32 runs Newton's method on random polynomials, which does not
//! always converge) must give the same verdict on every run.
pub use rand08::{distributions, rngs, CryptoRng, Error, RngCore, SeedableRng};

thread_local! {
    static SEEDED: std::rc::Rc<std::cell::RefCell<rand08::rngs::StdRng>> =
        std::rc::Rc::new(std::cell::RefCell::new(rand08::rngs::StdRng::seed_from_u64(42)));
}

pub struct ThreadRng(std::rc::Rc<std::cell::RefCell<rand08::rngs::StdRng>>);

impl rand08::RngCore for ThreadRng {
    fn next_u32(&mut self) -> u32 {
        self.0.borrow_mut().next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.borrow_mut().next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.borrow_mut().fill_bytes(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand08::Error> {
        self.0.borrow_mut().try_fill_bytes(dest)
    }
}

pub fn thread_rng() -> ThreadRng {
    SEEDED.with(|r| ThreadRng(r.clone()))
}

pub fn random<T>() -> T
where
    rand08::distributions::Standard: rand08::distributions::Distribution<T>,
{
    rand08::Rng::gen(&mut thread_rng())
}

pub trait Rng: rand08::RngCore {
    fn gen<T>(&mut self) -> T
    where
        rand08::distributions::Standard: rand08::distributions::Distribution<T>,
    {
        rand08::Rng::gen(self)
    }

    fn gen_range<T>(&mut self, low: T, high: T) -> T
    where
        T: rand08::distributions::uniform::SampleUniform + PartialOrd,
    {
        rand08::Rng::gen_range(self, low..high)
    }

    fn gen_bool(&mut self, p: f64) -> bool {
        rand08::Rng::gen_bool(self, p)
    }
}

impl<R: rand08::RngCore + ?Sized> Rng for R {}
"""
INSTALL_CRATES = "apt-get install -y librust-rand-dev librust-regex-dev librust-md5-dev"
# strip=debuginfo: the linker skips the prebuilt standard library's debug info (~15 ms of a
# ~95 ms build); panics still name file and line (that comes from the code, not debug info)
FLAGS = (
    "--edition", "2021", "--test", "-C", "debuginfo=0", "-C", "strip=debuginfo", "-C", "opt-level=0",
    "-A", "warnings",
)  # fmt: skip

TRAILER = """
#[cfg(test)]
mod zzzz_slmbench_trailer {
    // Sorts after every other test; with --test-threads=1 it runs last.
    #[test]
    fn zzzz_all_tests_ran() {
        use std::io::Write;
        use std::os::unix::fs::FileTypeExt;
        use std::os::unix::io::FromRawFd;
        if let Ok(token) = std::env::var("SLMBENCH_TOKEN") {
            let file = unsafe { std::fs::File::from_raw_fd(3) };
            if file.metadata().map(|m| m.file_type().is_fifo()).unwrap_or(false) {
                let mut f = &file;
                let _ = f.write_all(token.as_bytes());
            }
            std::mem::forget(file);
        }
    }
}
"""

CARGO_TOML = """[package]
name = "slmbench_rand"
version = "0.1.0"
edition = "2021"

[dependencies]
rand08 = {{ package = "rand", version = "0.8" }}
{deps}

[profile.dev]
debug = 0
"""

CARGO_CONFIG = f"""[source.crates-io]
replace-with = "debian"

[source.debian]
directory = "{REGISTRY}"

[net]
offline = true
"""


def deps_dir() -> Path:
    """``<cache>/rust-deps-<key>/deps`` with the rlibs of CRATES and their dependencies."""
    key = toolchain_fingerprint(["rustc", "-vV"], ["cargo", "-V"], extra=repr(CRATES) + RAND_COMPAT + "v2")

    def build(tmp: Path) -> None:
        proj = tmp / "proj"
        (proj / "src").mkdir(parents=True)
        (proj / ".cargo").mkdir()
        deps = "\n".join(f'{name} = "{version}"' for name, version in CRATES.items() if name != "rand")
        (proj / "Cargo.toml").write_text(CARGO_TOML.format(deps=deps))
        (proj / ".cargo" / "config.toml").write_text(CARGO_CONFIG)
        (proj / "src" / "lib.rs").write_text(RAND_COMPAT)
        env = dict(os.environ, CARGO_TARGET_DIR=str(tmp / "target"), CARGO_HOME=str(tmp / "cargo-home"))
        run_checked(["cargo", "build", "--offline", "--quiet"], proj, "building the Rust crates", env=env)
        out = tmp / "deps"
        shutil.copytree(tmp / "target" / "debug" / "deps", out)
        for d in ("target", "cargo-home", "proj"):
            shutil.rmtree(tmp / d, ignore_errors=True)
        for p in out.iterdir():
            p.chmod(0o644)
        out.chmod(0o755)
        tmp.chmod(0o755)

    return cached_artifact("rust-deps", key, build) / "deps"


@functools.cache
def rustc_path() -> str:
    """The real compiler binary: rustup's ``rustc`` proxy needs $HOME/.rustup, which the
    scrubbed sandbox environment does not have."""
    try:
        out = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "rustc"
    real = Path(out.stdout.strip()) / "bin" / "rustc"
    return str(real) if out.returncode == 0 and real.is_file() else "rustc"


def extern_args(deps: Path) -> list[str]:
    args = ["-L", f"dependency={deps}"]
    for name, stem in EXTERNS.items():
        rlibs = sorted(deps.glob(f"lib{stem}-*.rlib"))
        if rlibs:
            args += ["--extern", f"{name}={rlibs[0]}"]
    return args


# What could make a program mean something else inside a module of a shared crate than as a
# crate of its own: crate-level attributes, paths through the crate root (crate::, $crate,
# super:: from its top level, extern crate self), exported macros, files beside the source,
# symbols of its own name (no_mangle, a global allocator), names of where it is (module_path!,
# type_name, file!/line!/column!), and its command line (a member gets its test filter there).
_NOT_SHARED = re.compile(
    r"#!\[|#\[\s*(macro_export|macro_use|global_allocator|path|no_mangle|export_name|link_section|link|used)\b"
    r"|\bcrate\s*::|\$crate|\bextern\b|^\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*;"
    r"|\b(include|include_str|include_bytes|module_path|line|column|file|env)\s*!\s*[(\[{]|\btype_name\b"
    r"|\bargs(_os)?\s*\(|" + MEMBER_PREFIX,
    re.MULTILINE,
)
# the one use of super:: that means the same at any depth: a module importing its parent
_SUPER_OF_MODULE = re.compile(r"\bmod\s+\w+\s*\{\s*use\s+super\s*::\s*\*\s*;")


class Rust(Language):
    """Programs are built together (shared_build_limit) as modules of one test crate; a member's
    tests are run alone by libtest's name filter ``slmbench_member_<i>::``."""

    name = "rust"
    source_file = "main.rs"
    shared_build_limit = 16
    tools = (
        Tool("rustc", ("--version",), "apt-get install -y rustc"),
        Tool("cargo", ("--version",), "apt-get install -y cargo"),
    )

    def checks(self) -> list[Check]:
        return [Check(f"crate {name} (Debian, offline)", _crate_probe(name), INSTALL_CRATES) for name in CRATES]

    def environment(self) -> Mapping[str, str]:
        return {"RUST_BACKTRACE": "0"}

    def trailer(self) -> str:
        return TRAILER

    def build_commands(self, src: Path, out_dir: Path) -> Sequence[Sequence[str]]:
        return [[rustc_path(), *FLAGS, *extern_args(deps_dir()), str(src), "-o", str(out_dir / "test.bin")]]

    def run_command(self, src: Path, out_dir: Path) -> Sequence[str]:
        return [str(out_dir / "test.bin"), "--test-threads=1", "-q"]

    def shared_group(self, program: str) -> str | None:
        if _NOT_SHARED.search(program):
            return None
        if program.count("{") != program.count("}"):
            # cut off (a generation that hit its token limit): its errors would land in the
            # next member's lines, or its module would swallow the next member
            return None
        if len(re.findall(r"\bsuper\b", program)) != len(_SUPER_OF_MODULE.findall(program)):
            return None
        return "crate"

    def shared_source(self, programs: Sequence[str]) -> SharedSource:
        parts: list[str] = []
        lines: list[tuple[int, int]] = []
        line = 1
        for i, program in enumerate(programs):
            body = program if program.endswith("\n") else program + "\n"
            n = body.count("\n")
            parts.append(f"mod {MEMBER_PREFIX}{i} {{\n{body}}}\n")
            lines.append((line + 1, line + n))
            line += n + 2
        return SharedSource("".join(parts), tuple(lines))

    def member_args(self, member: int) -> Sequence[str]:
        # a substring filter: "..._1::" does not match "..._12::"
        return [f"{MEMBER_PREFIX}{member}::"]

    def judge(self, outcome: Outcome) -> tuple[Verdict, str]:
        # libtest prints the panic message of a failed assert!/assert_eq! after "panicked at"
        return judge_by_markers(outcome, ("assertion failed", "assertion `"), ("panicked at", "error:"))


def _crate_probe(name: str):
    def probe() -> str | None:
        found = sorted(Path(REGISTRY).glob(f"{name}-[0-9]*")) if Path(REGISTRY).is_dir() else []
        return found[-1].name if found else None

    return probe
