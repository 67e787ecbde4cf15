"""PHP (CLI). MultiPL-E's PHP tests throw ``Exception("Test failed!")``: an uncaught exception,
exit status 255. Errors go to stderr whatever the ini file says, and the trailer writes the
harness token to fd 3 after the tests (``exit(0)`` in a solution cannot pass).

Start-up: programs run with the system's configuration minus the extensions a test program
has no use for (SKIPPED_EXTENSIONS): readline (the interactive shell), opcache (disabled in the
CLI anyway), FFI (calls into C libraries), and the I/O, IPC and tooling extensions Debian enables
by default: sockets and ftp (no network in the sandbox), shmop and sysv* (shared memory,
semaphores, message queues), PDO (no database drivers), phar, exif, fileinfo, gettext, posix
and tokenizer. Each shared extension costs ~0.1 ms to load; together they are ~2.4 of PHP 8.2's
~10 ms start-up, about a quarter of a MultiPL-E sample. None of their functions or classes
occurs in MultiPL-E's PHP problems or in the published Qwen2.5-Coder 1.5B/7B PHP generations.
Everything else stays: ctype, iconv and calendar, whatever else the system adds (mbstring,
bcmath, gmp, intl, ...), and all that is built into the binary (standard, json, pcre, date, hash,
SPL, ...). ``PHP_INI_SCAN_DIR`` points at a copy of the scanned ini files without the skipped
ones, made once per PHP and configuration.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from slmbench.execution.languages.base import Language, Outcome, Tool, judge_by_markers
from slmbench.toolchains import cached_artifact, run_checked, toolchain_fingerprint
from slmbench.types import Verdict

SKIPPED_EXTENSIONS = frozenset(
    {
        "opcache", "readline", "ffi",
        "sockets", "ftp", "shmop", "sysvmsg", "sysvsem", "sysvshm",
        "pdo", "phar", "exif", "fileinfo", "gettext", "posix", "tokenizer",
    }
)  # fmt: skip
_LOADS = re.compile(r"^\s*(?:zend_)?extension\s*=\s*[\"']?([^\"'\s;]+)", re.M)

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

    def environment(self) -> Mapping[str, str]:
        scan_dir = ini_scan_dir()
        return {"PHP_INI_SCAN_DIR": scan_dir} if scan_dir is not None else {}

    def trailer(self) -> str:
        return TRAILER

    def run_command(self, src: Path, out_dir: Path) -> Sequence[str]:
        return ["php", "-d", "display_errors=stderr", "-d", "log_errors=0", "-f", str(src)]

    def judge(self, outcome: Outcome) -> tuple[Verdict, str]:
        return judge_by_markers(
            outcome, ("Test failed!",), ("PHP Fatal error", "PHP Parse error", "Fatal error", "Parse error")
        )


def loaded_extension(ini_text: str) -> str | None:
    """The extension an ini file loads (``extension=ffi.so`` -> ``ffi``), if any."""
    m = _LOADS.search(ini_text)
    if m is None:
        return None
    name = Path(m.group(1)).name
    return name.removesuffix(".so").removeprefix("php_")


@functools.cache
def ini_scan_dir() -> str | None:
    """A directory with the system's scanned ini files except those loading SKIPPED_EXTENSIONS;
    None (PHP's own configuration) when there is nothing to skip or it cannot be made."""
    try:
        listing = run_checked(["php", "-r", "echo php_ini_scanned_files();"], Path("/"), "listing PHP's ini files")
        files = [Path(f.strip()) for f in listing.split(",") if f.strip()]
        texts = {f.name: f.read_text() for f in files}
        kept = {name: text for name, text in texts.items() if loaded_extension(text) not in SKIPPED_EXTENSIONS}
        if len(kept) == len(texts):
            return None
        digest = hashlib.sha256(repr(sorted(texts.items())).encode()).hexdigest()
        key = toolchain_fingerprint(["php", "--version"], extra=f"v2 {digest} {sorted(SKIPPED_EXTENSIONS)}")

        def build(tmp: Path) -> None:
            for name, text in kept.items():
                (tmp / name).write_text(text)

        return str(cached_artifact("php-ini", key, build))
    except Exception:  # noqa: BLE001 - PHP's own configuration is the safe fallback
        return None
