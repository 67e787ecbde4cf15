"""TypeScript: ``tsc`` (type-checked, as MultiPL-E's harness does) then Node.

The compile flags are those the published MultiPL-E TypeScript results were produced with
(``--target ES2015 --lib ES2015,DOM``): a program that does not type-check is a compile error
there too. The JavaScript it emits runs like :mod:`javascript` (same preload and verdicts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from slmbench.execution.languages.base import Language, Outcome, Tool, judge_by_markers
from slmbench.execution.languages.javascript import ERROR_MARKERS, FAILED_MARKERS, npm_global_root, preload_path
from slmbench.toolchains import Check
from slmbench.types import Verdict

INSTALL_TSC = "npm install -g typescript@5"
TSC_FLAGS = ("--target", "ES2015", "--lib", "ES2015,DOM", "--module", "commonjs", "--pretty", "false")

# no @types/node: reach require and process through eval (typed any)
TRAILER = """
;(function () {
  const fs = eval("require")("fs");
  try {
    if (fs.fstatSync(3).isFIFO()) fs.writeSync(3, String(eval("process").env.SLMBENCH_TOKEN || ""));
  } catch (e) {}
})();
"""


class TypeScript(Language):
    name = "typescript"
    source_file = "main.ts"
    tools = (
        Tool("node", ("--version",), "apt-get install -y nodejs npm"),
        Tool("tsc", ("--version",), INSTALL_TSC),
    )

    def checks(self) -> list[Check]:
        return []

    def environment(self) -> Mapping[str, str]:
        return {"NODE_PATH": npm_global_root(), "NODE_OPTIONS": "--max-old-space-size=1024"}

    def trailer(self) -> str:
        return TRAILER

    def build_commands(self, src: Path, out_dir: Path) -> Sequence[Sequence[str]]:
        return [["tsc", *TSC_FLAGS, "--outDir", str(out_dir / "js"), str(src)]]

    def run_command(self, src: Path, out_dir: Path) -> Sequence[str]:
        return ["node", "--require", str(preload_path()), str(out_dir / "js" / (Path(self.source_file).stem + ".js"))]

    def judge(self, outcome: Outcome) -> tuple[Verdict, str]:
        return judge_by_markers(outcome, FAILED_MARKERS, ERROR_MARKERS)
