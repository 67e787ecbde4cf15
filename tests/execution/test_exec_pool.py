"""The executor: verdicts, limits, isolation, dedupe, the generic (built) path, the pool."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from exec_langs import c_program, register

from slmbench.execution.pool import Executor
from slmbench.types import ExecLimits, ExecRequest, ExecResult, Verdict

register()
FAST = ExecLimits(timeout_s=2.0, wall_timeout_s=4.0)


@pytest.fixture(scope="module")
def ex(tmp_path_factory: pytest.TempPathFactory):
    with Executor(workers=2, cache_dir=tmp_path_factory.mktemp("cache")) as executor:
        yield executor


def run(ex: Executor, programs: dict[str, str], language: str = "python", limits: ExecLimits = FAST, **kw):
    reqs = [ExecRequest(key, language, prog, limits, **kw) for key, prog in programs.items()]
    out = {r.key: r for r in ex.run(reqs)}
    assert set(out) == set(programs)
    return out


def one(ex: Executor, program: str, language: str = "python", limits: ExecLimits = FAST, **kw) -> ExecResult:
    return run(ex, {"k": program}, language, limits, **kw)["k"]


# ---- Python verdicts ------------------------------------------------------------------
def test_pass_and_fail_and_messages(ex):
    r = run(
        ex,
        {
            "pass": "def f(x):\n    return x + 1\nassert f(1) == 2\n",
            "assert": "def f(x):\n    return x\nassert f(1) == 2\n",
            "assert_msg": "assert 1 == 2, 'one is not two'\n",
            "exception": "raise ValueError('boom')\n",
            "syntax": "def f(:\n    pass\n",
            "nul": "x = 1\0\n",
        },
    )
    assert r["pass"].verdict is Verdict.PASSED and r["pass"].message == "" and r["pass"].exit_code == 0
    assert r["assert"].verdict is Verdict.FAILED
    assert r["assert"].message == "AssertionError at line 3: assert f(1) == 2"
    assert r["assert_msg"].message == "AssertionError: one is not two"
    assert r["exception"].verdict is Verdict.FAILED and r["exception"].message == "ValueError: boom"
    assert r["syntax"].verdict is Verdict.ERROR and r["syntax"].message.startswith("SyntaxError")
    assert r["nul"].verdict is Verdict.ERROR
    assert r["pass"].cpu_s > 0 and r["pass"].wall_s > 0


def test_traceback_shows_source_lines(ex):
    r = one(ex, "def g():\n    return 1 / 0\ng()\n")
    assert r.verdict is Verdict.FAILED and r.message == "ZeroDivisionError: division by zero"
    assert "return 1 / 0" in r.stderr  # linecache fed without writing the file


def test_early_exits_do_not_pass(ex):
    r = run(
        ex,
        {
            "sys_exit0": "import sys\nsys.exit(0)\nassert False\n",
            "exit0": "exit(0)\nassert False\n",
            "os_exit0": "import os\nos._exit(0)\nassert False\n",
            "raise_systemexit": "raise SystemExit\n",
            "prints_passed": "print('passed')\nimport os\nos._exit(0)\n",
            "kill_self": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
        },
    )
    for key in ("sys_exit0", "exit0", "os_exit0", "raise_systemexit", "prints_passed"):
        assert r[key].verdict is Verdict.FAILED, key
        assert "exited before the tests finished" in r[key].message, key
    assert r["kill_self"].verdict is Verdict.ERROR and "SIGKILL" in r["kill_self"].message


def test_cpu_timeout_and_sleep_backstop(ex):
    limits = ExecLimits(timeout_s=1.0, wall_timeout_s=2.0)
    r = run(ex, {"loop": "while True:\n    pass\n", "sleep": "import time\ntime.sleep(60)\n"}, limits=limits)
    assert r["loop"].verdict is Verdict.TIMEOUT and "CPU" in r["loop"].message
    assert r["loop"].cpu_s >= 0.5  # RLIMIT_CPU (tick-sampled) and rusage differ a little
    assert r["sleep"].verdict is Verdict.TIMEOUT and "wall" in r["sleep"].message
    assert r["sleep"].cpu_s < 0.5 and r["sleep"].wall_s < 10


def test_busy_program_outlives_short_wall_backstop(ex):
    # A CPU-bound program starved by a loaded machine is not a sleeper: the wall-clock
    # backstop (here absurdly short) does not stop it; only CPU time counts.
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6:\n    pass\n"
    r = one(ex, burn, limits=ExecLimits(timeout_s=3.0, wall_timeout_s=0.2))
    assert r.verdict is Verdict.PASSED, r
    assert r.wall_s > 0.2


def test_cpu_over_limit_is_timeout_even_if_it_finishes(ex):
    # RLIMIT_CPU has whole seconds; the verdict uses the measured CPU time.
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.8:\n    pass\n"
    r = one(ex, burn, limits=ExecLimits(timeout_s=0.5, wall_timeout_s=5))
    assert r.verdict is Verdict.TIMEOUT


def test_memory_blowup(ex):
    r = run(
        ex,
        {
            "bytearray": "x = bytearray(10 ** 11)\n",
            "list": "x = []\nwhile True:\n    x.append(' ' * 10 ** 7)\n",
        },
        limits=ExecLimits(timeout_s=5.0, memory_mb=512),
    )
    assert r["bytearray"].verdict is Verdict.FAILED and "MemoryError" in r["bytearray"].message
    assert r["list"].verdict is not Verdict.PASSED


def test_numpy_imports_under_the_default_memory_limit(ex):
    r = one(ex, "import numpy as np\nassert int(np.arange(4).sum()) == 6\n", limits=ExecLimits())
    assert r.verdict is Verdict.PASSED, r


def test_huge_output_is_capped_and_does_not_change_the_verdict(ex):
    limits = ExecLimits(timeout_s=5.0, max_output_bytes=1000)
    big = "import sys\nfor _ in range(2000):\n    print('x' * 5000)\n    sys.stderr.write('y' * 5000)\n"
    r = {"big": one(ex, big, limits=limits)}
    r["forever"] = one(
        ex, "while True:\n    print('x' * 10000)\n", limits=ExecLimits(timeout_s=0.5, max_output_bytes=1000)
    )
    assert r["big"].verdict is Verdict.PASSED
    assert len(r["big"].stdout) == 1000 and len(r["big"].stderr) == 1000
    assert r["forever"].verdict is Verdict.TIMEOUT and len(r["forever"].stdout) == 1000


def test_stdin(ex):
    r = one(ex, "import sys\nassert sys.stdin.read() == 'hello'\n", stdin="hello")
    assert r.verdict is Verdict.PASSED
    r = one(ex, "import sys\nassert sys.stdin.read() == ''\n")
    assert r.verdict is Verdict.PASSED


def test_environment_is_scrubbed(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    prog = (
        "import os\n"
        "assert 'OPENAI_API_KEY' not in os.environ and 'HF_TOKEN' not in os.environ\n"
        "assert os.environ['HOME'] == os.getcwd()\n"
        "assert set(os.environ) <= {'PATH','HOME','TMPDIR','LANG','LC_ALL','PYTHONDONTWRITEBYTECODE',"
        "'PYTHONHASHSEED','OMP_NUM_THREADS','OPENBLAS_NUM_THREADS','MKL_NUM_THREADS'}, sorted(os.environ)\n"
        # what a program started by the sample inherits is the same scrubbed environment
        "import subprocess\n"
        "seen = dict(l.split('=', 1) for l in subprocess.run(['env'], capture_output=True, text=True).stdout.splitlines())\n"
        "assert seen == dict(os.environ), (seen, dict(os.environ))\n"
        "for pid in os.listdir('/proc'):\n"
        "    if pid.isdigit():\n"
        "        try:\n"
        "            assert b'sk-secret' not in open(f'/proc/{pid}/environ', 'rb').read()\n"
        "        except PermissionError:\n"
        "            pass\n"
    )
    with Executor(workers=1, cache_dir=tmp_path) as fresh:
        r = one(fresh, prog)
    assert r.verdict is Verdict.PASSED, r


def test_workers_keep_their_bytecode_in_the_cache(tmp_path):
    # whatever PYTHONDONTWRITEBYTECODE says (the harness's own setting): a worker's imports are
    # compiled once, into the executor's cache, and never beside the sources
    with Executor(workers=1, cache_dir=tmp_path) as fresh:
        assert one(fresh, "x = 1\n").passed
    kept = {p.name.split(".")[0] for p in (tmp_path / "pycache").rglob("*.pyc")}
    assert {"worker", "sandbox", "inline", "dataclasses"} <= kept


def test_temp_dirs_are_private_and_fresh(ex):
    here = os.getcwd()
    prog = (
        "import os\n"
        f"assert os.getcwd() != {here!r}\n"
        "assert os.listdir('.') == [], os.listdir('.')\n"
        "open('leftover.txt', 'w').write('x')\n"
    )
    r = run(ex, {f"s{i}": prog + f"# {i}\n" for i in range(6)})
    assert all(v.verdict is Verdict.PASSED for v in r.values()), r
    assert not Path(here, "leftover.txt").exists()


def test_process_group_and_escapees_are_killed(ex):
    marker = f"slmbench-test-{os.getpid()}-{time.monotonic_ns()}"
    prog = (
        "import subprocess, os\n"
        f"subprocess.Popen(['sh', '-c', 'exec -a {marker} sleep 1000'])\n"
        "if os.fork() == 0:\n"  # a daemon: double fork + setsid
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execvp('sh', ['sh', '-c', 'exec -a {marker} sleep 1000'])\n"
        "    os._exit(0)\n"
        f"subprocess.Popen(['sh', '-c', 'exec -a {marker} sleep 1000'], start_new_session=True)\n"
    )
    r = one(ex, prog)
    assert r.verdict is Verdict.PASSED, r
    time.sleep(0.2)
    assert not _processes_matching(marker)


def _processes_matching(text: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if text.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(int(pid))
            except OSError:
                pass
    return found


def test_dedupe_runs_identical_programs_once(tmp_path):
    prog = "assert True\n"
    reqs = [ExecRequest(f"k{i}", "python", prog, FAST) for i in range(5)]
    reqs.append(ExecRequest("other", "python", "assert False\n", FAST))
    with Executor(workers=2, cache_dir=tmp_path) as dd:
        results = {r.key: r for r in dd.run(reqs)}
    assert set(results) == {f"k{i}" for i in range(5)} | {"other"}
    assert sum(not r.cached for r in results.values()) == 2
    assert sum(r.cached for r in results.values()) == 4
    assert all(results[f"k{i}"].verdict is Verdict.PASSED for i in range(5))
    assert results["other"].verdict is Verdict.FAILED and not results["other"].cached
    with Executor(workers=2, cache_dir=tmp_path, dedupe=False) as nd:
        assert not any(r.cached for r in nd.run(reqs))


def test_keys_preserved_in_any_order_and_parallel_workers(ex):
    progs = {f"key/{i}#x": f"import os, time\ntime.sleep(0.05)\nprint(os.getuid())\n# {i}\n" for i in range(12)}
    r = run(ex, progs)
    assert all(v.verdict is Verdict.PASSED for v in r.values())
    # two workers, each with its own sandbox uid, shared the work
    assert len({v.stdout.strip() for v in r.values()}) == 2


def test_lazy_request_iterables_and_progress(tmp_path):
    seen = []

    def gen():
        for i in range(5):
            yield ExecRequest(str(i), "python", f"assert {i} >= 0\n", FAST)

    with Executor(workers=1, cache_dir=tmp_path, progress=seen.append) as e:
        out = list(e.run(gen()))
    assert sorted(r.key for r in out) == ["0", "1", "2", "3", "4"]
    assert [r.key for r in seen] == [r.key for r in out]


def test_sample_cannot_touch_the_harness(ex, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    prog = (
        "import os, signal\n"
        f"for p in ({os.getpid()}, os.getppid(), 1):\n"
        "    try:\n"
        "        os.kill(p, signal.SIGKILL)\n"
        "    except OSError:\n"
        "        pass\n"
        "try:\n"
        f"    open({str(victim)!r}, 'w').write('gone')\n"
        "except OSError:\n"
        "    pass\n"
    )
    r = one(ex, prog)
    assert r.verdict is Verdict.PASSED
    assert victim.read_text() == "keep"
    # the pool still works afterwards
    assert one(ex, "assert 1\n").verdict is Verdict.PASSED


# ---- the generic path: built and interpreted languages -------------------------------------
def test_compiled_language_verdicts_and_build_cache(ex):
    progs = {
        "pass": c_program("assert(1 + 1 == 2);"),
        "fail": c_program("assert(1 + 1 == 3);"),
        "exit0": c_program("return 0;"),
        "compile": c_program("this is not C;"),
        "loop": c_program("for (;;) {}"),
    }
    r = run(ex, progs, language="test-c", limits=ExecLimits(timeout_s=1.0, wall_timeout_s=3.0))
    assert r["pass"].verdict is Verdict.PASSED, r["pass"]
    assert r["pass"].compile_s > 0
    assert r["fail"].verdict is Verdict.FAILED and "Assertion" in r["fail"].message
    assert r["exit0"].verdict is Verdict.FAILED
    assert r["compile"].verdict is Verdict.COMPILE_ERROR and "main.c" in r["compile"].message
    assert r["loop"].verdict is Verdict.TIMEOUT
    # built once: a second run of the same program finds it in the content-hash cache
    again = one(ex, progs["pass"], language="test-c")
    assert again.verdict is Verdict.PASSED and again.compile_s == 0


def test_compiled_program_runs_unprivileged_without_network(ex):
    body = (
        'FILE *f = fopen("/etc/slmbench-should-not-exist", "w"); assert(f == NULL);'
        "assert(getuid() != 0);"
        'assert(system("exec 3<>/dev/tcp/127.0.0.1/22 2>/dev/null") != 0);'
    )
    r = one(ex, c_program(body, "#include <unistd.h>\n#include <stdlib.h>"), language="test-c")
    assert r.verdict is Verdict.PASSED, r


def test_interpreted_language_without_build(ex):
    trailer = '\nprintf %s "$SLMBENCH_TOKEN" >&3\n'
    r = run(
        ex,
        {"pass": "test 1 -eq 1" + trailer, "fail": "test 1 -eq 2" + trailer, "exit0": "exit 0" + trailer},
        language="test-sh",
    )
    assert r["pass"].verdict is Verdict.PASSED and r["pass"].compile_s == 0
    assert r["fail"].verdict is Verdict.FAILED
    assert r["exit0"].verdict is Verdict.FAILED


def test_missing_toolchain_is_skipped_with_install_hint(ex):
    r = one(ex, "x", language="test-missing")
    assert r.verdict is Verdict.SKIPPED and "apt-get install" in r.message


def test_unknown_sandbox_level_is_a_user_error():
    from slmbench.errors import UserError

    with pytest.raises(UserError):
        Executor(sandbox="docker")


def test_a_dead_worker_is_replaced_and_its_requests_retried(tmp_path):
    reqs = [ExecRequest(str(i), "python", f"import time\ntime.sleep(0.3)\nassert {i} >= 0\n", FAST) for i in range(6)]
    with Executor(workers=2, cache_dir=tmp_path) as e:
        results = []
        for r in e.run(reqs):
            if not results:
                os.kill(e._pool[0].proc.pid, 9)  # the worker (or its shim) dies mid-run
            results.append(r)
    assert sorted(r.key for r in results) == [str(i) for i in range(6)]
    assert all(r.verdict is Verdict.PASSED for r in results), results


def test_rich_progress_bar(tmp_path):
    with Executor(workers=1, cache_dir=tmp_path, progress=True) as e:
        out = list(e.run([ExecRequest("a", "python", "pass\n", FAST)]))
    assert out[0].verdict is Verdict.PASSED


def test_abandoned_run_does_not_leak_into_the_next(tmp_path):
    with Executor(workers=1, cache_dir=tmp_path) as e:
        first = e.run(
            [ExecRequest(f"a{i}", "python", f"import time\ntime.sleep(0.2)\n# {i}\n", FAST) for i in range(4)]
        )
        next(first)
        first.close()  # the caller stops iterating with requests still in flight
        out = list(e.run([ExecRequest("b", "python", "assert True\n", FAST)]))
    assert [r.key for r in out] == ["b"] and out[0].verdict is Verdict.PASSED


def test_unseeded_random_is_the_same_in_every_sample():
    # children start from the worker's seeded state (sandbox.fork): repeatable verdicts
    import random

    expected = random.Random(0).random()
    prog = f"import random\nassert random.random() == {expected!r}, random.random()\n"
    with Executor(workers=1) as fresh:
        results = run(fresh, {f"s{i}": prog + f"# {i}\n" for i in range(3)})
    assert all(r.verdict is Verdict.PASSED for r in results.values()), results


@pytest.mark.parametrize("level", ["default", "bwrap"])
def test_programs_may_use_threads_processes_and_shared_memory(level):
    # what ordinary Python programs do must work inside the sandbox (the fork that starts a
    # sample skips CPython's at-fork hooks; /dev/shm is the worker's own, emptied after each)
    prog = (
        "import concurrent.futures, multiprocessing, os, subprocess, threading\n"
        "seen = []\n"
        "t = threading.Thread(target=lambda: seen.append(1)); t.start(); t.join()\n"
        "assert seen == [1] and threading.current_thread() is threading.main_thread()\n"
        "with concurrent.futures.ThreadPoolExecutor(4) as ex:\n"
        "    assert sum(ex.map(lambda x: x * x, range(10))) == 285\n"
        "with multiprocessing.Pool(2) as p:\n"
        "    assert p.map(abs, [-1, -2]) == [1, 2]\n"
        "assert subprocess.run(['echo', 'hi'], capture_output=True, text=True).stdout == 'hi\\n'\n"
        "assert os.listdir('/dev/shm') == [], os.listdir('/dev/shm')\n"
        "open('/dev/shm/leftover', 'w').write('x')\n"
    )
    with Executor(workers=1, sandbox=level) as fresh:
        results = run(fresh, {f"s{i}": prog + f"# {i}\n" for i in range(3)}, limits=ExecLimits(timeout_s=10))
    assert all(r.verdict is Verdict.PASSED for r in results.values()), results
