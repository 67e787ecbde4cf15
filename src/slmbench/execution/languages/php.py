"""PHP (CLI). MultiPL-E's PHP tests throw ``Exception("Test failed!")``: an uncaught exception,
exit status 255. Errors go to stderr whatever the ini file says, and the trailer writes the
harness token to fd 3 after the tests (``exit(0)`` in a solution cannot pass)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from slmbench.execution.languages.base import Language, Outcome, Tool, judge_by_markers
from slmbench.types import Verdict

TRAILER = """
$__slmbench_fd = @fopen("php://fd/3", "w");
if ($__slmbench_fd !== false && (fstat($__slmbench_fd)["mode"] & 0170000) === 0010000) {
    fwrite($__slmbench_fd, (string) getenv("SLMBENCH_TOKEN"));
    fclose($__slmbench_fd);
}
"""


class Php(Language):
    name = "php"
    source_file = "main.php"
    tools = (Tool("php", ("--version",), "apt-get install -y php-cli"),)

    def trailer(self) -> str:
        return TRAILER

    def run_command(self, src: Path, out_dir: Path) -> Sequence[str]:
        return ["php", "-d", "display_errors=stderr", "-d", "log_errors=0", "-f", str(src)]

    def judge(self, outcome: Outcome) -> tuple[Verdict, str]:
        return judge_by_markers(
            outcome, ("Test failed!",), ("PHP Fatal error", "PHP Parse error", "Fatal error", "Parse error")
        )
