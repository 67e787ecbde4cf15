"""Hostile programs through the real executor, in each isolation level that applies here:
each must get its expected (never passing) verdict, the run must go on, and afterwards the
host must be clean: no stray processes, files outside the temp dirs untouched, nothing
listening. The catalogue is in hostile_programs.py and docs/security.md."""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest
from hostile_programs import Context, catalogue

from slmbench.execution.languages import LANGUAGES
from slmbench.execution.pool import Executor
from slmbench.types import ExecRequest, Verdict

pytestmark = [pytest.mark.slow, pytest.mark.toolchain]
REPO = Path(__file__).resolve().parents[2]
SECRET = "sk-slmbench-hostile-test-secret"
LEVELS = ["default", "bwrap"]


def _available_languages() -> set[str]:
    out = set()
    for name in ("javascript", "cpp", "go", "java"):
        if name in LANGUAGES and not LANGUAGES.get(name)().missing_tools():
            out.add(name)
    return out


class Host:
    """The harness side of the world the samples must not touch."""

    def __init__(self, root: Path) -> None:
        pid = os.getpid()
        self.marker = f"slmbench-hostile-{pid}-{time.monotonic_ns()}"
        base = Path("/var/cache") if os.access("/var/cache", os.W_OK) else REPO / ".pytest_cache"
        self.canary_dir = base / f"slmbench-hostile-canary-{pid}"
        self.canary_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.canary_dir, 0o777)  # world-writable: only the sandbox can protect it
        victim = self.canary_dir / "victim.txt"
        victim.write_text("canary")
        os.chmod(victim, 0o666)
        self.home_secret = Path.home() / f".slmbench-hostile-secret-{pid}"
        self.home_secret.write_text("home secret")
        os.chmod(self.home_secret, 0o644)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.listener.settimeout(0)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.listen_port = s.getsockname()[1]
        # a process whose (initial) environment holds the secret, as the harness's would
        self.secret_holder = subprocess.Popen(["sleep", "600"], env={"OPENAI_API_KEY": SECRET})
        self.snapshot = self._files()

    def context(self) -> Context:
        return Context(
            canary_dir=str(self.canary_dir),
            home_secret=str(self.home_secret),
            secret=SECRET,
            port=self.listener.getsockname()[1],
            listen_port=self.listen_port,
            marker=self.marker,
        )

    def _files(self) -> dict[str, tuple[int, str]]:
        out = {}
        for p in [self.canary_dir, *sorted(self.canary_dir.iterdir()), self.home_secret]:
            st = os.lstat(p)
            out[str(p)] = (stat.S_IMODE(st.st_mode), p.read_text() if p.is_file() else "")
        return out

    def problems(self, sandbox_uids: set[int]) -> list[str]:
        found = []
        if self._files() != self.snapshot:
            found.append(f"files outside the temp dirs changed: {self._files()} != {self.snapshot}")
        for d in ("/tmp", "/var/tmp", "/dev/shm"):
            for name in os.listdir(d):
                if "pwned" in name or self.marker in name:
                    found.append(f"{d}/{name} written")
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                uid = os.stat(f"/proc/{pid}").st_uid
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if uid in sandbox_uids or self.marker.encode() in cmd:
                found.append(f"stray process {pid} (uid {uid}): {cmd[:80]!r}")
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                port = int(cols[1].rsplit(":", 1)[1], 16)
                if cols[3] == "0A" and (int(cols[7]) in sandbox_uids or port == self.listen_port):
                    found.append(f"listening socket {cols[1]} (uid {cols[7]})")
        try:
            conn, _ = self.listener.accept()
            found.append("a sample connected to the harness listener")
            conn.close()
        except (BlockingIOError, OSError):
            pass
        return found

    def close(self) -> None:
        self.secret_holder.kill()
        self.secret_holder.wait()
        self.listener.close()
        shutil.rmtree(self.canary_dir, ignore_errors=True)
        self.home_secret.unlink(missing_ok=True)


@pytest.fixture(scope="module", params=LEVELS)
def outcome(request, tmp_path_factory):
    """Run the whole catalogue once per isolation level; check the host after."""
    level = request.param
    if level == "bwrap" and shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is not installed (apt-get install -y bubblewrap)")
    host = Host(tmp_path_factory.mktemp("host"))
    os.environ["OPENAI_API_KEY"] = SECRET
    try:
        programs = catalogue(host.context(), _available_languages())
        reqs = [ExecRequest(h.name, h.language, h.program, h.limits) for h in programs]
        with Executor(workers=2, sandbox=level, cache_dir=tmp_path_factory.mktemp("cache")) as ex:
            results = {r.key: r for r in ex.run(reqs)}
            uids = {w.info["sandbox_uid"] for w in ex._pool if w.info.get("sandbox_uid")}
            time.sleep(0.2)
            during = host.problems(uids)
            # the pool survived all of it
            after = list(ex.run([ExecRequest("after", "python", "assert 1 + 1 == 2\n")]))
        problems = during + host.problems(uids)
        yield level, programs, results, problems, after
    finally:
        os.environ.pop("OPENAI_API_KEY", None)
        host.close()


def test_catalogue_size_and_languages():
    c = Context("/nonexistent", "/nonexistent", SECRET, 1, 2, "m")
    progs = catalogue(c, _available_languages())
    assert len(progs) >= 30
    assert len({h.language for h in progs}) >= 4, "Python plus at least three other languages"
    assert len({h.name for h in progs}) == len(progs)
    assert all(Verdict.PASSED not in h.expected for h in progs)


def test_every_hostile_program_gets_its_verdict(outcome):
    level, programs, results, _, after = outcome
    wrong = []
    for h in programs:
        r = results[h.name]
        if r.verdict not in h.expected:
            wrong.append(
                f"{h.name}: {r.verdict.value} ({r.message[:120]}), expected {sorted(v.value for v in h.expected)}"
            )
    assert not wrong, f"[{level}] " + "\n".join(wrong)
    assert after and after[0].verdict is Verdict.PASSED


def test_output_floods_are_capped(outcome):
    _, programs, results, _, _ = outcome
    assert len(results["py_stdout_flood"].stdout) <= 4096
    assert len(results["py_stderr_flood"].stderr) <= 4096


def test_host_is_clean_afterwards(outcome):
    level, _, _, problems, _ = outcome
    assert not problems, f"[{level}] " + "\n".join(problems)


def test_guard_is_what_stops_equality_tricks(tmp_path):
    """Without the guard markers the same always-equal solution passes: the guard matters."""
    from hostile_programs import TESTS

    cheat = "class A:\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return A()\n"
    with Executor(workers=1, cache_dir=tmp_path) as ex:
        plain = list(ex.run([ExecRequest("plain", "python", cheat + TESTS + "check(add)\n")]))[0]
    assert plain.verdict is Verdict.PASSED


def test_docs_list_every_hostile_program():
    doc = (REPO / "docs" / "security.md").read_text()
    c = Context("/x", "/x", SECRET, 1, 2, "m")
    listed = set(re.findall(r"^\| `([a-z0-9_]+)` \|", doc, flags=re.M))
    names = {h.name for h in catalogue(c, {"javascript", "cpp", "go", "java"})}
    assert names == listed, f"missing from docs: {names - listed}; stale: {listed - names}"


def test_sandbox_none_warns():
    with pytest.warns(RuntimeWarning, match="trusted"):
        Executor(sandbox="none").close()


def test_sandbox_none_still_limits_and_reports(tmp_path):
    with pytest.warns(RuntimeWarning), Executor(workers=1, sandbox="none", cache_dir=tmp_path) as ex:
        r = {
            x.key: x
            for x in ex.run(
                [
                    ExecRequest("ok", "python", "assert 1 + 1 == 2\n"),
                    ExecRequest("exit0", "python", "import os\nos._exit(0)\n"),
                ]
            )
        }
    assert r["ok"].verdict is Verdict.PASSED and r["exit0"].verdict is Verdict.FAILED
