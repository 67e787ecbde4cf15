"""slmbench doctor and the fail-fast toolchain check."""

from __future__ import annotations

import io
import os
import threading

import pytest
from rich.console import Console

from slmbench import toolchains
from slmbench.errors import UserError
from slmbench.execution.languages import LANGUAGES, php
from slmbench.execution.languages.base import Tool
from slmbench.execution.pool import Executor
from slmbench.types import ExecLimits, ExecRequest, Verdict

ALL = ("javascript", "typescript", "java", "cpp", "go", "rust", "php", "ruby", "shell")


def test_every_language_is_registered_with_tools_and_install_commands():
    for name in ALL:
        lang = LANGUAGES.get(name)()
        assert lang.name == name
        assert lang.tools, name
        for tool in lang.tools:
            assert tool.install.startswith(("apt-get install -y ", "npm install -g ")), (name, tool)
        for check in lang.checks() if hasattr(lang, "checks") else ():
            assert check.install.startswith(("apt-get install -y ", "npm install -g ")), (name, check)


def test_missing_tool_fails_fast_with_the_install_command(monkeypatch):
    lang_cls = LANGUAGES.get("php")
    monkeypatch.setattr(lang_cls, "tools", (Tool("php-does-not-exist-here", install="apt-get install -y php-cli"),))
    statuses = toolchains.language_status("php")
    assert [s.ok for s in statuses] == [False]
    with pytest.raises(UserError) as err:
        toolchains.require("php")
    assert "php-does-not-exist-here missing" in str(err.value)
    assert "apt-get install -y php-cli" in str(err.value)


def test_doctor_lists_missing_requirements_and_how_to_install(monkeypatch):
    lang_cls = LANGUAGES.get("ruby")
    monkeypatch.setattr(lang_cls, "tools", (Tool("ruby-nope", install="apt-get install -y ruby"),))
    monkeypatch.setattr(
        lang_cls, "checks", lambda self: [toolchains.Check("gem x", lambda: None, "apt-get install -y ruby-x")]
    )
    out = io.StringIO()
    ok = toolchains.doctor(Console(file=out, width=200), languages=["ruby"])
    text = out.getvalue()
    assert ok is False
    assert "ruby-nope" in text and "gem x" in text and "missing" in text
    assert "apt-get install -y ruby-x" in text.split("install what is missing with:")[1]


@pytest.mark.toolchain
def test_doctor_on_this_machine_reports_every_language_complete():
    out = io.StringIO()
    # only the shipped languages: other tests register toy languages in the same registry
    ok = toolchains.doctor(Console(file=out, width=250), languages=ALL)
    missing = [s for name in ALL for s in toolchains.language_status(name) if not s.ok]
    assert ok, f"toolchains missing: {missing}\n{out.getvalue()}"
    for name in ALL:
        assert name in out.getvalue()
    assert "exec helper: /" in out.getvalue()  # built here: programs start without a fork
    assert "zygote: /" in out.getvalue()  # and inline Python samples are not forked by the worker


def test_cached_artifact_is_built_once_under_concurrency(tmp_path, monkeypatch):
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path))
    calls = []

    def build(d):
        calls.append(1)
        (d / "x").write_text("built")

    paths = []
    threads = [
        threading.Thread(target=lambda: paths.append(toolchains.cached_artifact("thing", "k1", build)))
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len(set(paths)) == 1 and (paths[0] / "x").read_text() == "built"


def test_cached_artifact_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path))

    def broken(d):
        (d / "half").write_text("x")
        raise UserError("toolchain broke")

    with pytest.raises(UserError):
        toolchains.cached_artifact("thing", "k2", broken)
    assert not (toolchains.cache_root() / "thing-k2").exists()
    assert [p.name for p in toolchains.cache_root().iterdir() if not p.name.startswith(".thing-k2.lock")] == []


def test_cached_artifact_is_readable_by_every_uid(tmp_path, monkeypatch):
    # samples and builds run as a sandbox uid: what a build leaves must be readable by it, whatever
    # the umask, and executables stay executable
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path))

    def build(d):
        (d / "sub").mkdir(mode=0o700)
        (d / "sub" / "data").write_text("x")
        (d / "sub" / "data").chmod(0o600)
        (d / "tool").write_text("#!/bin/sh\n")
        (d / "tool").chmod(0o700)

    root = toolchains.cached_artifact("thing", "k3", build)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (root, root / "sub", root / "sub" / "data", root / "tool")}
    assert modes == {root.name: 0o755, "sub": 0o755, "data": 0o644, "tool": 0o755}


@pytest.mark.toolchain
def test_samples_reach_the_toolchain_cache_under_a_strict_umask(tmp_path, monkeypatch):
    # The harness (and so the worker it starts) under umask 077, a cache made from scratch:
    # the sandboxed PHP sample still gets its ini files (ctype and calendar are loaded only
    # through them), which live under the toolchain cache.
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache-home"))
    php.ini_scan_dir.cache_clear()
    program = (
        '<?php\nif (!ctype_digit("42") || !function_exists("cal_days_in_month")) { throw new Exception("no ini"); }\n'
        + php.TRAILER
    )
    old = os.umask(0o077)
    try:
        with Executor(workers=1, cache_dir=tmp_path / "exec") as ex:
            (result,) = ex.run([ExecRequest(key="k", language="php", program=program, limits=ExecLimits(timeout_s=10))])
            uid = ex.isolation["sandbox_uid"]
    finally:
        os.umask(old)
        php.ini_scan_dir.cache_clear()
    assert result.verdict is Verdict.PASSED, (result.verdict, result.message, uid)
    assert toolchains.cache_root().stat().st_mode & 0o011 == 0o011
