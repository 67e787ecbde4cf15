"""Tiny languages for testing the executor's generic path without the real language modules:
C built with ``cc`` (a compiled language: build cache, compile errors) and plain ``sh``
(interpreted: no build step)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from slmbench.execution.languages import LANGUAGES
from slmbench.execution.languages.base import Language, Tool

C_TRAILER = r"""
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static void slmbench_token(void) {
    const char *t = getenv("SLMBENCH_TOKEN");
    if (t) write(3, t, strlen(t));
}
"""


class TestC(Language):
    """A C program whose ``main`` calls ``slmbench_token()`` after its checks."""

    name = "test-c"
    source_file = "main.c"
    tools = (Tool("cc"),)

    def trailer(self) -> str:
        return C_TRAILER

    def build_commands(self, src: Path, out_dir: Path) -> Sequence[Sequence[str]]:
        return [["cc", "-O0", "-w", "-o", str(out_dir / "prog"), str(src)]]

    def run_command(self, src: Path, out_dir: Path) -> Sequence[str]:
        return [str(out_dir / "prog")]


class TestSh(Language):
    name = "test-sh"
    source_file = "main.sh"
    tools = (Tool("sh"),)

    def trailer(self) -> str:
        return '\nprintf %s "$SLMBENCH_TOKEN" >&3\n'

    def run_command(self, src: Path, out_dir: Path) -> Sequence[str]:
        return ["sh", "-e", str(src)]


class TestMissing(Language):
    name = "test-missing"
    source_file = "main.x"
    tools = (Tool("slmbench-no-such-compiler", install="apt-get install -y no-such-compiler"),)

    def run_command(self, src: Path, out_dir: Path) -> Sequence[str]:
        return ["slmbench-no-such-compiler", str(src)]


def register() -> None:
    for cls in (TestC, TestSh, TestMissing):
        if cls.name not in LANGUAGES:
            LANGUAGES.add(cls.name, cls)


def c_program(body: str, prelude: str = "") -> str:
    """A C test program: ``body`` runs in main; the token is written only if it returns."""
    return f"#include <stdio.h>\n#include <assert.h>\n{prelude}\n{C_TRAILER}\nint main(void) {{\n{body}\nslmbench_token();\nreturn 0;\n}}\n"
