"""Where the worker imports from stays visible inside its sandbox, and nothing that is private
is bound back: a checkout or virtualenv under /tmp (whose private tmpfs would hide it) works,
while /tmp itself, the home and the root are never re-exposed."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from slmbench.execution import sandbox
from slmbench.execution.languages import LANGUAGES
from slmbench.execution.pool import Executor
from slmbench.types import ExecLimits, ExecRequest, Verdict

MODULE = textwrap.dedent(
    """
    from slmbench.execution.languages.base import Language, Tool


    class TmpSh(Language):
        name = "tmp-sh"
        source_file = "main.sh"
        tools = (Tool("sh"),)

        def trailer(self):
            return '\\nprintf %s "$SLMBENCH_TOKEN" >&3\\n'

        def run_command(self, src, out_dir):
            return ["sh", "-e", str(src)]
    """
)


def test_only_directories_below_shared_or_private_places_are_exposed(monkeypatch):
    home = os.path.expanduser("~")
    below = tempfile.mkdtemp(dir="/tmp", prefix="slmbench-expose-")
    try:
        monkeypatch.setattr(sys, "path", ["/tmp", below, home, "/", "/var", *sys.path])
        exposed = sandbox.exposed_paths()
    finally:
        os.rmdir(below)
    assert below in exposed
    assert not {"/tmp", home, "/", "/var"} & set(exposed)


@pytest.mark.parametrize("level", ["default", "bwrap"])
def test_a_language_imported_from_under_tmp_runs(tmp_path, monkeypatch, level):
    # (the module lives in a real /tmp directory, as a fresh clone in /tmp would)
    where = Path(tempfile.mkdtemp(dir="/tmp", prefix="slmbench-imports-"))
    try:
        (where / "slmbench_tmp_lang.py").write_text(MODULE)
        monkeypatch.syspath_prepend(str(where))
        if "tmp-sh" not in LANGUAGES:
            LANGUAGES.add("tmp-sh", "slmbench_tmp_lang:TmpSh")
        program = "test 1 -eq 1\n" + '\nprintf %s "$SLMBENCH_TOKEN" >&3\n'
        with Executor(workers=1, sandbox=level, cache_dir=tmp_path / "cache") as ex:
            (result,) = ex.run([ExecRequest("k", "tmp-sh", program, ExecLimits(timeout_s=5.0))])
    finally:
        shutil.rmtree(where, ignore_errors=True)
    assert result.verdict is Verdict.PASSED, result.message
