"""Bash. MultiPL-E's shell tests run ``set -e`` then ``[[ ... ]]`` checks, so a failed check ends
the script with a non-zero status; the trailer writes the token to fd 3 afterwards. A script
cannot tell a failed check from a failed command, so a non-zero exit is FAILED unless bash
reports a syntax error or a missing command. Some tasks' solutions call ``bc``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from slmbench.execution.languages.base import Language, Outcome, Tool, judge_by_markers
from slmbench.types import Verdict

ERROR_MARKERS = ("syntax error", "command not found", "unbound variable")

TRAILER = """
if [[ -p /dev/fd/3 ]]; then printf '%s' "$SLMBENCH_TOKEN" >&3; fi
"""


class Shell(Language):
    name = "shell"
    source_file = "main.sh"
    tools = (
        Tool("bash", ("--version",), "apt-get install -y bash"),
        Tool("bc", ("--version",), "apt-get install -y bc"),
    )

    def trailer(self) -> str:
        return TRAILER

    def run_command(self, src: Path, out_dir: Path) -> Sequence[str]:
        return ["bash", str(src)]

    def judge(self, outcome: Outcome) -> tuple[Verdict, str]:
        verdict, message = judge_by_markers(outcome, (), ERROR_MARKERS)
        crashed = any(m in outcome.stderr for m in ERROR_MARKERS)
        if verdict is Verdict.ERROR and not crashed and (outcome.exit_code or 0) > 0:
            # a failed [[ check ]] under `set -e`: the tests ran and rejected the answer
            return Verdict.FAILED, message
        return verdict, message
