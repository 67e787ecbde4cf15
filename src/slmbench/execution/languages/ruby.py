"""Ruby with test-unit. test-unit normally runs the tests in an ``at_exit`` hook, which would
run *after* anything appended to the file; the trailer turns that off, runs the tests itself,
and writes the harness token to fd 3 only when they all passed, so ``exit 0`` or ``exit!`` in a
solution cannot pass."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from slmbench.execution.languages.base import Language, Outcome, Tool, judge_by_markers
from slmbench.toolchains import Check, command_check
from slmbench.types import Verdict

TRAILER = """
Test::Unit::AutoRunner.need_auto_run = false
__slmbench_ok = Test::Unit::AutoRunner.run
if __slmbench_ok
  begin
    __slmbench_io = IO.new(3, "w")
    __slmbench_io.write(ENV.fetch("SLMBENCH_TOKEN", "")) if __slmbench_io.stat.pipe?
    __slmbench_io.close
  rescue StandardError
  end
end
exit(__slmbench_ok ? 0 : 1)
"""


class Ruby(Language):
    name = "ruby"
    source_file = "main.rb"
    tools = (Tool("ruby", ("--version",), "apt-get install -y ruby"),)

    def checks(self) -> list[Check]:
        return [
            command_check(
                "test-unit",
                ["ruby", "-e", "require 'test/unit/version'; puts 'test-unit ' + Test::Unit::VERSION"],
                "apt-get install -y ruby-test-unit",
            )
        ]

    def trailer(self) -> str:
        return TRAILER

    def run_command(self, src: Path, out_dir: Path) -> Sequence[str]:
        return ["ruby", str(src)]

    def judge(self, outcome: Outcome) -> tuple[Verdict, str]:
        return judge_by_markers(outcome, ("Failure:",), ("Error:", "syntax error", "(SyntaxError)"))
