"""Python: run inline, in a process forked from a warm interpreter (no start-up per sample).

What runs in that process, the verdicts and the guard against tampering with the tests are in
``execution/inline.py``; this is Python as one of the executor's languages.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from slmbench.execution.channel import RESULT_FD, TOKEN_ENV
from slmbench.execution.languages.base import Language, Tool


class Python(Language):
    name: ClassVar[str] = "python"
    source_file: ClassVar[str] = "main.py"
    tools: ClassVar[tuple[Tool, ...]] = (Tool("python3", install="apt-get install -y python3"),)
    inline: ClassVar[bool] = True

    def run_command(self, src: Path, out_dir: Path) -> Sequence[str]:
        # Only used when not inline (e.g. another interpreter); the trailer below then applies.
        return [sys.executable, "-I", str(src)]

    def trailer(self) -> str:
        # Inline execution needs no trailer: the worker writes the token itself.
        return ""

    def subprocess_trailer(self) -> str:
        """Trailer for running Python as a separate interpreter (run_command)."""
        return f"\nimport os as _o\n_o.write({RESULT_FD}, _o.environ[{TOKEN_ENV!r}].encode())\n"
