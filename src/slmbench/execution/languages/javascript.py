"""JavaScript on Node.js.

``console.assert`` only prints in Node; HumanEvalPack's JS tests rely on it, so every run
preloads a module that makes a failed ``console.assert`` throw an ``AssertionError`` (an
uncaught exception: exit status 1). The trailer writes the harness token to fd 3 after the
tests, so ``process.exit(0)`` before them cannot pass. ``js-md5`` (JavaScript/162) resolves
from npm's global module folder through NODE_PATH.
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from slmbench.execution.languages.base import Language, Outcome, Tool, judge_by_markers
from slmbench.toolchains import Check, cached_artifact, command_check, toolchain_fingerprint
from slmbench.types import Verdict

INSTALL_NODE = "apt-get install -y nodejs npm"
INSTALL_MD5 = "npm install -g js-md5"

# node:assert is required only when an assertion fails: loading it up front costs every run
# ~2 ms (4% of a Node start), and the error thrown is the same.
PRELOAD = """'use strict';
// Make console.assert fail the run, as a test framework's assert would.
console.assert = function (value, ...message) {
  if (!value) {
    const { AssertionError } = require('node:assert');
    throw new AssertionError({
      message: 'console.assert failed' + (message.length ? ': ' + message.join(' ') : ''),
      actual: value,
      expected: true,
      operator: 'console.assert',
    });
  }
};
"""

TRAILER = """
;(function () {
  const fs = require('fs');
  try {
    if (fs.fstatSync(3).isFIFO()) fs.writeSync(3, String(process.env.SLMBENCH_TOKEN || ''));
  } catch (e) {}
})();
"""

FAILED_MARKERS = ("AssertionError [", "AssertionError:", "console.assert failed")
ERROR_MARKERS = ("Error:", "Error [")


@functools.cache
def npm_global_root() -> str:
    try:
        out = subprocess.run(["npm", "root", "-g"], capture_output=True, text=True, timeout=60)
        return out.stdout.strip() if out.returncode == 0 else "/usr/lib/node_modules"
    except (OSError, subprocess.TimeoutExpired):
        return "/usr/lib/node_modules"


def preload_path() -> Path:
    key = toolchain_fingerprint(extra=PRELOAD)

    def build(tmp: Path) -> None:
        (tmp / "preload.js").write_text(PRELOAD)

    return cached_artifact("node-preload", key, build) / "preload.js"


def node_module_check(module: str, install: str) -> Check:
    """The module resolves from npm's global folder (how the runs find it: NODE_PATH)."""
    argv = ["node", "-e", f"require.resolve('{module}')"]
    return Check(
        f"npm module {module}",
        lambda: command_check("", argv, install, env={"NODE_PATH": npm_global_root()}).probe(),
        install,
    )


class JavaScript(Language):
    name = "javascript"
    source_file = "main.js"
    tools = (Tool("node", ("--version",), INSTALL_NODE), Tool("npm", ("--version",), INSTALL_NODE))

    def checks(self) -> list[Check]:
        return [node_module_check("js-md5", INSTALL_MD5)]

    def environment(self) -> Mapping[str, str]:
        return {"NODE_PATH": npm_global_root(), "NODE_OPTIONS": "--max-old-space-size=1024"}

    def trailer(self) -> str:
        return TRAILER

    def run_command(self, src: Path, out_dir: Path) -> Sequence[str]:
        return ["node", "--require", str(preload_path()), str(src)]

    def judge(self, outcome: Outcome) -> tuple[Verdict, str]:
        return judge_by_markers(outcome, FAILED_MARKERS, ERROR_MARKERS)
