"""Building the executor's small C programs (the exec helper, the zygote library) once per C
compiler and source into the toolchain cache.

Both are optional: a caller that gets None falls back to a slower pure-Python path, and each has
an environment switch to force that (``SLMBENCH_EXEC_HELPER=off``, ``SLMBENCH_ZYGOTE=off``).
Both include ``child_setup.h`` (the sandboxed child's set-up), so it is part of every key."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from slmbench.errors import UserError
from slmbench.toolchains import cached_artifact, toolchain_fingerprint

HERE = Path(__file__).parent
SHARED_HEADERS = (HERE / "child_setup.h",)


def switched_off(env_switch: str) -> bool:
    return os.environ.get(env_switch, "").lower() in ("0", "off", "no", "false")


def c_compiler() -> str | None:
    return next((found for name in ("cc", "gcc", "clang") if (found := shutil.which(name))), None)


def build(kind: str, source: Path, output: str, flag_sets: Sequence[Sequence[str]]) -> Path | None:
    """``<cache>/<kind>-<key>/<output>`` built from ``source`` with the first of ``flag_sets``
    that compiles, or None without a C compiler or a source. Raises UserError when no flag set
    compiles (the compiler's last words in the message), OSError when the cache cannot be
    written."""
    cc = c_compiler()
    if cc is None or not source.is_file():
        return None
    digest = hashlib.sha256()
    for path in (source, *SHARED_HEADERS):
        digest.update(path.read_bytes())
    key = toolchain_fingerprint([cc, "--version"], extra=digest.hexdigest())

    def compile_into(tmp: Path) -> None:
        errors = []
        for flags in flag_sets:
            cmd = [cc, "-O2", *flags, "-o", str(tmp / output), str(source)]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            if res.returncode == 0:
                return
            errors.append(res.stderr.strip()[-500:])
        raise UserError(f"building {kind} failed: {errors[-1]}")

    return cached_artifact(kind, key, compile_into) / output
