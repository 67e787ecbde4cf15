"""C++17 with g++, with precompiled headers built once per distinct set of leading includes.

Parsing standard headers is most of the compile time of a HumanEval-style C++ program
(MultiPL-E's include all of ``<bits/stdc++.h>``). The ``#include`` lines a program starts with
(before any code) are precompiled once into the shared toolchain cache and force-included
(``-include``); the program's own ``#include`` of them is then a no-op. Only the program's own
leading includes are used, so the result is exactly what a plain compile gives (a header set
wider than the program's would change overload resolution: with <cstring> in scope,
``strlen("")`` calls the C function instead of a solution's ``strlen(string)``). A shared build
takes them in its first member's order: standard headers declare the same in any order.

Tests are ``int main(){ assert(...); }``. ``main`` is renamed at compile time (``-Dmain=...``)
and the trailer defines the real ``main``: it calls the tests and writes the harness token to
fd 3 only when they returned, so ``exit(0)`` in a solution cannot pass. Boost (header-only
``boost/any.hpp``) and OpenSSL's ``-lcrypto`` are available to every program.
"""

from __future__ import annotations

import functools
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from slmbench.execution.languages.base import (
    MEMBER_PREFIX,
    BuildOutput,
    CommandRunner,
    Language,
    Outcome,
    SharedSource,
    Tool,
    first_error_line,
    judge_by_markers,
)
from slmbench.execution.languages.cpp_batching import INCLUDE_LINE, USER_MAIN, batch_blocker, expanded_identifiers
from slmbench.toolchains import Check, cached_artifact, file_check, run_checked, toolchain_fingerprint
from slmbench.types import Verdict

INSTALL = "apt-get install -y g++ libboost-dev libssl-dev"
FLAGS = ("-std=c++17", "-O0", f"-Dmain={USER_MAIN}", "-w")
LIBS = ("-lcrypto",)
PCH_HEADER = "slmbench_pch.h"
NAMES_FILE = "names.txt"
INSTANCES = "instances.o"
# std::vector of these is instantiated once, in instances_dir(), and declared ``extern template``
# at the top of each shared build whose includes declare it: g++ then compiles none of vector's
# members into each build (-8% of the compile CPU over HumanEvalPack's shared builds). A program
# built alone is compiled as it is: it might specialise std::vector itself.
VECTOR_ELEMENTS = ("int", "long", "long long", "float", "double", "char", "std::vector<int>", "std::vector<float>")
VECTOR_ELEMENTS_OF_STRING = ("std::string",)
INSTANCES_LINKED = "// slmbench: std::vector instances linked in"

MAIN_HEADERS = """
#undef main
#include <cstdlib>
#include <cstring>
#include <sys/stat.h>
#include <unistd.h>
"""
SAY_DONE = """
    // the tests returned: tell the harness (only through its pipe)
    const char* slmbench_token = std::getenv("SLMBENCH_TOKEN");
    struct stat slmbench_st;
    if (slmbench_token != nullptr && fstat(3, &slmbench_st) == 0 && S_ISFIFO(slmbench_st.st_mode)) {
        ssize_t slmbench_n = write(3, slmbench_token, std::strlen(slmbench_token));
        (void)slmbench_n;
    }
    return 0;
}
"""
TRAILER = MAIN_HEADERS + f"int main() {{\n    {USER_MAIN}();" + SAY_DONE

# Shared builds: each member is wrapped in its own namespace after the leading includes they
# all have; assert.h's declarations stay global, and the assert macro is in scope in each
# member exactly where it would be alone (from its leading includes, or from its own
# #include <assert.h> before the tests).
SHARED_HEAD = """
#ifdef assert
#define SLMBENCH_ASSERT_LEADS 1
#else
#define SLMBENCH_ASSERT_LEADS 0
#include <assert.h>
#endif
"""
MEMBER_HEAD = """#if SLMBENCH_ASSERT_LEADS
#include <assert.h>
#else
#undef assert
#undef assert_perror
#endif
"""


_SYSTEM_INCLUDE = re.compile(r"^#\s*include\s*<([\w./+-]+)>$")
_USER_MAIN = re.compile(r"\bint\s+main\s*\(\s*(void\s*)?\)")


def leading_includes(source: str) -> tuple[str, ...]:
    """The ``#include`` lines before the first line of code (comments and blank lines skipped)."""
    return tuple(line for _, line in _leading_include_lines(source))


def _leading_include_lines(source: str) -> list[tuple[int, str]]:
    """(index, stripped text) of each line leading_includes() returns."""
    found: list[tuple[int, str]] = []
    in_comment = False
    for index, raw in enumerate(source.splitlines()):
        line = raw.strip()
        if in_comment:
            if "*/" in line:
                in_comment = False
                line = line.split("*/", 1)[1].strip()
            else:
                continue
        if line.startswith("/*"):
            if "*/" not in line[2:]:
                in_comment = True
                continue
            line = line[2:].split("*/", 1)[1].strip()
        if not line or line.startswith("//"):
            continue
        if INCLUDE_LINE.match(line):
            found.append((index, line))
            continue
        break
    return found


def _system_headers(includes: tuple[str, ...]) -> list[str] | None:
    """The header names of ``#include <...>`` lines; None when a line includes anything else."""
    found = [_SYSTEM_INCLUDE.match(line) for line in includes]
    return [m.group(1) for m in found if m] if all(found) else None


def extern_vectors(includes: tuple[str, ...]) -> tuple[str, ...]:
    """The element types whose std::vector these includes declare and instances_dir() holds."""
    names = set(_system_headers(includes) or ())
    everything = "bits/stdc++.h" in names
    if not (everything or "vector" in names):
        return ()
    return VECTOR_ELEMENTS + (VECTOR_ELEMENTS_OF_STRING if everything or "string" in names else ())


def instances_dir() -> Path:
    """Directory holding ``instances.o``: the explicit instantiations extern_vectors() names."""
    elements = VECTOR_ELEMENTS + VECTOR_ELEMENTS_OF_STRING
    key = toolchain_fingerprint(["g++", "--version"], extra=repr(FLAGS) + repr(elements))

    def build(tmp: Path) -> None:
        source = tmp / "instances.cpp"
        lines = ["#include <string>", "#include <vector>", *(f"template class std::vector<{t}>;" for t in elements)]
        source.write_text("\n".join(lines) + "\n")
        run_checked(
            ["g++", *FLAGS, "-c", str(source), "-o", str(tmp / INSTANCES)], tmp, "compiling std::vector instances"
        )

    return cached_artifact("cpp-instances", key, build)


def pch_dir(includes: tuple[str, ...]) -> Path:
    """Directory holding ``slmbench_pch.h`` (``includes``) and its ``.gch``, built with FLAGS."""
    key = toolchain_fingerprint(["g++", "--version"], extra=repr(FLAGS) + "\n".join(includes) + "v3")

    def build(tmp: Path) -> None:
        header = tmp / PCH_HEADER
        header.write_text("\n".join(includes) + "\n")
        run_checked(
            ["g++", *FLAGS, "-x", "c++-header", str(header), "-o", str(tmp / (PCH_HEADER + ".gch"))],
            tmp,
            "building a C++ precompiled header",
        )
        # every identifier the headers spell, for shared builds (cpp_batching.batch_blocker)
        (tmp / NAMES_FILE).write_text("\n".join(sorted(expanded_identifiers(includes, FLAGS))) + "\n")

    return cached_artifact("cpp-pch", key, build)


@functools.cache
def header_names(includes: tuple[str, ...]) -> frozenset[str]:
    return frozenset((pch_dir(includes) / NAMES_FILE).read_text().split())


class Cpp(Language):
    """Programs with the same leading includes are built together (shared_build_limit), each in
    a namespace of its own, when cpp_batching finds nothing that could mean something else
    there; a dispatching ``main`` runs member ``argv[1]``."""

    name = "cpp"
    source_file = "main.cpp"
    shared_build_limit = 64
    tools = (Tool("g++", ("--version",), INSTALL),)

    def __init__(self, use_pch: bool = True) -> None:
        self.use_pch = use_pch

    def checks(self) -> list[Check]:
        return [
            file_check("boost headers", "/usr/include/boost/any.hpp", "apt-get install -y libboost-dev"),
            file_check("openssl headers (-lcrypto)", "/usr/include/openssl/md5.h", "apt-get install -y libssl-dev"),
        ]

    def trailer(self) -> str:
        return TRAILER

    def shared_group(self, program: str) -> str | None:
        includes = leading_includes(program)
        if not (self.use_pch and includes and program.endswith(TRAILER)):
            return None
        names = _system_headers(includes)
        if names is None:
            return None  # a file beside the program, or a path: never preprocessed ahead
        if any("/" in name for name in names):
            return "\n".join(includes)
        # The standard's headers may be included in any order, each declaring the same; so
        # programs that include the same of them, in any order or spelling, build together.
        return "\n".join(f"#include <{name}>" for name in sorted(set(names)))

    def shared_blocker(self, program: str) -> str | None:
        if self.shared_group(program) is None:
            return "not in a shared group"
        body = program[: -len(TRAILER)]
        includes = leading_includes(body)
        if not _USER_MAIN.search(body):
            return "no int main()"
        return batch_blocker(body, includes, header_names(includes))

    def shared_source(self, programs: Sequence[str]) -> SharedSource:
        includes = leading_includes(programs[0])
        parts = [*includes, *SHARED_HEAD.strip("\n").split("\n")]
        elements = extern_vectors(includes)
        if elements:
            parts += [INSTANCES_LINKED, *(f"extern template class std::vector<{t}>;" for t in elements)]
        lines: list[tuple[int, int]] = []
        for i, program in enumerate(programs):
            body = program[: -len(TRAILER)].split("\n")
            for index, _ in _leading_include_lines(program):
                body[index] = ""  # hoisted above; the line stays, so line numbers keep their places
            parts += [*MEMBER_HEAD.strip("\n").split("\n"), f"namespace {MEMBER_PREFIX}{i} {{"]
            lines.append((len(parts) + 1, len(parts) + len(body)))
            parts += [*body, "}"]
        calls = [f"    case {i}: {MEMBER_PREFIX}{i}::{USER_MAIN}(); break;" for i in range(len(programs))]
        dispatch = [
            "int main(int slmbench_argc, char** slmbench_argv) {",
            "    if (slmbench_argc != 2) return 125;",
            "    switch (std::atoi(slmbench_argv[1])) {",
            *calls,
            "    default: return 125;",
            "    }",
        ]
        text = "\n".join(parts) + MAIN_HEADERS + "\n".join(dispatch) + SAY_DONE
        return SharedSource(text, tuple(lines))

    def member_args(self, member: int) -> Sequence[str]:
        return [str(member)]

    def compile_argv(
        self, src: Path, out_dir: Path, includes: tuple[str, ...] = (), instances: bool = False
    ) -> list[str]:
        """The g++ command; ``includes`` are force-included precompiled (pch_dir), and with
        ``instances`` the vector instances of a shared build are linked in."""
        forced = ["-include", str(pch_dir(includes) / PCH_HEADER)] if includes else []
        instances_o = [str(instances_dir() / INSTANCES)] if instances else []
        out = str(out_dir / "test.bin")
        return ["g++", *FLAGS, "-pipe", *forced, str(src), *instances_o, "-o", out, *_fast_linker(), *LIBS]

    def build_commands(self, src: Path, out_dir: Path) -> Sequence[Sequence[str]]:
        return [self.compile_argv(src, out_dir)]

    def build(self, src: Path, out_dir: Path, run: CommandRunner, timeout_s: float) -> BuildOutput:
        text = src.read_text(encoding="utf-8", errors="replace")
        includes = leading_includes(text) if self.use_pch else ()
        instances = INSTANCES_LINKED in text.split("\n")
        res = run(self.compile_argv(src, out_dir, includes, instances), out_dir, timeout_s)
        if res.timed_out:
            return BuildOutput(False, f"compilation timed out after {timeout_s:.0f} s", res.seconds)
        if res.exit_code != 0:
            message = _compiler_error(res.stderr) or first_error_line(res.stdout)
            return BuildOutput(False, message, res.seconds, log=res.stderr + res.stdout)
        return BuildOutput(True, "", res.seconds)

    def run_command(self, src: Path, out_dir: Path) -> Sequence[str]:
        return [str(out_dir / "test.bin")]

    def judge(self, outcome: Outcome) -> tuple[Verdict, str]:
        # a failed assert() prints "...: Assertion `x' failed." and aborts
        return judge_by_markers(outcome, ("Assertion `", "Assertion '"), ("terminate called", "Segmentation"))


@functools.cache
def _fast_linker() -> list[str]:
    """mold, else gold: a C++ test program links in ~12 ms with mold, ~20 ms with gold, ~45 ms
    with the default bfd (of a ~100 ms build); the executable is the same. mold runs in one
    thread of its own process: every core already runs a build or a test, and its threads and
    background child cost ~25% more CPU for nothing."""
    if shutil.which("ld.mold"):
        return ["-fuse-ld=mold", "-Wl,--no-fork,--no-threads"]
    if shutil.which("ld.gold"):
        return ["-fuse-ld=gold"]
    return []


def _compiler_error(stderr: str) -> str:
    for line in stderr.splitlines():
        if "error" in line:
            return line.strip()[:500]
    return first_error_line(stderr)
