"""Ruby with test-unit. test-unit normally runs the tests in an ``at_exit`` hook, which would
run *after* anything appended to the file; the trailer turns that off, runs the tests itself,
and writes the harness token to fd 3 only when they all passed, so ``exit 0`` or ``exit!`` in a
solution cannot pass.

Start-up: RubyGems costs ~25 ms of a ~65 ms test-unit run (it loads every installed gem's
specification to resolve ``require``). Programs run with ``--disable-gems`` and a prelude that
puts the library directories of the installed non-default gems (newest version of each:
test-unit, power_assert, prime, matrix, ...) first on ``$LOAD_PATH``, where activating them
would put them; default gems are the standard library's own directories already. The prelude is
made once per Ruby and set of gems. Every ``require`` resolves as before; what a program no
longer gets is RubyGems itself (``Gem``, ``gem "x"``, unless it requires ``rubygems``) and the
"Did you mean?" hints in error messages (did_you_mean is loaded by RubyGems).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from slmbench.execution.languages.base import Language, Outcome, Tool, judge_by_markers
from slmbench.toolchains import Check, cached_artifact, command_check, run_checked, toolchain_fingerprint
from slmbench.types import Verdict

# the gems' library directories, as RubyGems would activate them (newest version of each)
GEM_PATHS = """
latest = {}
Gem::Specification.each do |s|
  next if s.default_gem? || s.name == "rubygems-update"
  latest[s.name] = s if latest[s.name].nil? || s.version > latest[s.name].version
end
paths = latest.values.sort_by(&:name).flat_map(&:full_require_paths).select { |p| File.directory?(p) }
print "$LOAD_PATH.unshift(*#{paths.inspect})\n"
"""
PRELUDE = "slmbench_gems.rb"

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
        prelude = gems_prelude()
        return ["ruby", "--disable-gems", f"-r{prelude}", str(src)] if prelude else ["ruby", str(src)]

    def judge(self, outcome: Outcome) -> tuple[Verdict, str]:
        return judge_by_markers(outcome, ("Failure:",), ("Error:", "syntax error", "(SyntaxError)"))


@functools.cache
def gems_prelude() -> str | None:
    """Path of the prelude that puts the installed gems on ``$LOAD_PATH``; None (run with
    RubyGems) when it cannot be made."""
    listing = ["ruby", "-e", "puts RUBY_DESCRIPTION, Gem::Specification.map(&:full_name).sort"]
    try:
        key = toolchain_fingerprint(listing, extra="v1")

        def build(tmp: Path) -> None:
            (tmp / PRELUDE).write_text(run_checked(["ruby", "-e", GEM_PATHS], tmp, "listing Ruby's gems"))

        return str(cached_artifact("ruby-gems", key, build) / PRELUDE)
    except Exception:  # noqa: BLE001 - RubyGems' own start-up is the safe fallback
        return None
