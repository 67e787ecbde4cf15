"""The catalogue of hostile programs: each with its language, what it tries, and the verdict
it must get. Every one must end not-passed; the host is checked after them (test_hostile.py).
docs/security.md lists the same catalogue (a test keeps the two in step).

Programs that try to do something forbidden are written to *pass only if the attack worked*
(``assert <the attack succeeded>``), so FAILED means the sandbox stopped it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slmbench.execution.inline import guarded_program
from slmbench.types import ExecLimits, Verdict

P, F, T, E = Verdict.PASSED, Verdict.FAILED, Verdict.TIMEOUT, Verdict.ERROR
LIMITS = ExecLimits(timeout_s=2.0, wall_timeout_s=6.0, max_output_bytes=4096)
# memory bombs hit a small address-space limit before the CPU limit (page faults cost CPU)
MEMORY_LIMITS = ExecLimits(timeout_s=5.0, memory_mb=512, max_output_bytes=4096)


@dataclass(frozen=True)
class Context:
    canary_dir: str  # world-writable dir + file outside any temp dir
    home_secret: str  # a world-readable file in the harness user's home
    secret: str  # value of OPENAI_API_KEY in the harness environment
    port: int  # a harness listener on 127.0.0.1
    listen_port: int  # a port the samples try to listen on
    marker: str  # appears in the command line of any process a sample leaves behind


@dataclass(frozen=True)
class Hostile:
    name: str
    language: str
    what: str  # what it tries, for docs/security.md
    program: str
    expected: frozenset[Verdict]
    limits: ExecLimits = field(default=LIMITS)


TESTS = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n    return None\n"


def he(solution: str) -> str:
    """A HumanEval-style guarded program: ``add`` is the entry point, TESTS the tests."""
    return guarded_program(solution, TESTS, "add")


def _python(c: Context) -> list[Hostile]:
    daemon = (
        "import os\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execvp('sh', ['sh', '-c', 'exec -a {c.marker} sleep 1000'])\n"
        "    os._exit(0)\n"
    )
    attempts = (
        "ok = []\ndef attempt(f):\n    try:\n        f()\n        ok.append(f)\n    except Exception:\n        pass\n"
    )
    return [
        Hostile(
            "py_fork_bomb",
            "python",
            "fork bomb",
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
            frozenset({T}),
        ),
        Hostile("py_memory_bomb", "python", "allocate 1 TiB at once", "b = bytearray(1 << 40)\n", frozenset({F})),
        Hostile(
            "py_memory_grow",
            "python",
            "grow memory until it runs out",
            "x = []\nwhile True:\n    x.append(bytearray(50 * 2 ** 20))\n",
            frozenset({F}),
            ExecLimits(timeout_s=5.0, memory_mb=1024),
        ),
        Hostile(
            "py_deep_recursion",
            "python",
            "unbounded recursion",
            "def f(n):\n    return f(n + 1)\nf(0)\n",
            frozenset({F}),
        ),
        Hostile(
            "py_deep_recursion_unlimited",
            "python",
            "unbounded recursion with the recursion limit lifted (3.11 keeps frames on the heap)",
            "import sys\nsys.setrecursionlimit(10 ** 8)\ndef f(n):\n    return f(n + 1) + 1\nf(0)\n",
            frozenset({T, F}),
        ),
        Hostile("py_infinite_loop", "python", "infinite loop", "while True:\n    pass\n", frozenset({T})),
        Hostile(
            "py_ignore_signals",
            "python",
            "loop ignoring SIGTERM, SIGINT, SIGHUP and SIGXCPU",
            "import signal\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):\n"
            "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass\n",
            frozenset({T}),
        ),
        Hostile(
            "py_stdout_flood",
            "python",
            "unbounded output on stdout",
            "while True:\n    print('x' * 100000)\n",
            frozenset({T}),
        ),
        Hostile(
            "py_stderr_flood",
            "python",
            "unbounded output on stderr",
            "import sys\nwhile True:\n    sys.stderr.write('y' * 100000)\n",
            frozenset({T}),
        ),
        Hostile(
            "py_close_stdout",
            "python",
            "close stdout and stderr, then exit(0) before the tests",
            "import os, sys\nos.close(1)\nos.close(2)\nsys.exit(0)\n" + TESTS + "check(lambda a, b: 0)\n",
            frozenset({F}),
        ),
        Hostile(
            "py_redirect_stdout",
            "python",
            "redirect stdout to /dev/null, print 'passed', os._exit(0)",
            "import os\nos.dup2(os.open('/dev/null', os.O_WRONLY), 1)\nprint('passed')\nprint('{\"passed\": true}')\nos._exit(0)\n",
            frozenset({F}),
        ),
        Hostile(
            "py_read_stdin", "python", "read stdin (expects input)", "assert input() == 'expected'\n", frozenset({F})
        ),
        Hostile(
            "py_daemon",
            "python",
            "detach a grandchild (double fork + setsid) that sleeps forever, then exit(0)",
            daemon + "import sys\nsys.exit(0)\n",
            frozenset({F}),
        ),
        Hostile(
            "py_write_outside",
            "python",
            "write files outside its temp dir (world-writable canary, new files in /etc, $HOME, /var/tmp)",
            attempts
            + f"attempt(lambda: open({c.canary_dir + '/victim.txt'!r}, 'w').write('pwned'))\n"
            + f"attempt(lambda: open({c.canary_dir + '/new.txt'!r}, 'w').write('pwned'))\n"
            + "attempt(lambda: open('/etc/slmbench-pwned', 'w').write('pwned'))\n"
            + "attempt(lambda: open('/usr/lib/python3/slmbench-pwned', 'w').write('pwned'))\n"
            + "assert ok, 'nothing outside the temp dir was writable'\n",
            frozenset({F}),
        ),
        Hostile(
            "py_delete_outside",
            "python",
            "delete files and directories outside its temp dir",
            attempts
            + "import os, shutil\n"
            + f"attempt(lambda: os.remove({c.canary_dir + '/victim.txt'!r}))\n"
            + f"attempt(lambda: shutil.rmtree({c.canary_dir!r}))\n"
            + f"attempt(lambda: os.remove({c.home_secret!r}))\n"
            + "assert ok, 'nothing could be deleted'\n",
            frozenset({F}),
        ),
        Hostile(
            "py_chmod_outside",
            "python",
            "chmod/chown files outside its temp dir",
            attempts
            + "import os\n"
            + f"attempt(lambda: os.chmod({c.canary_dir + '/victim.txt'!r}, 0))\n"
            + f"attempt(lambda: os.chmod({c.canary_dir!r}, 0))\n"
            + f"attempt(lambda: os.chown({c.canary_dir + '/victim.txt'!r}, os.getuid(), os.getgid()))\n"
            + "assert ok, 'nothing could be chmod-ed'\n",
            frozenset({F}),
        ),
        Hostile(
            "py_read_env_secrets",
            "python",
            "read the harness's environment (API keys) from os.environ and /proc/*/environ",
            "import os\nfound = any('sk-' in v for v in os.environ.values())\n"
            "for pid in os.listdir('/proc'):\n"
            "    try:\n"
            f"        found |= {c.secret!r}.encode() in open(f'/proc/{{pid}}/environ', 'rb').read()\n"
            "    except OSError:\n"
            "        pass\n"
            "assert found, 'no secret visible'\n",
            frozenset({F}),
        ),
        Hostile(
            "py_read_home_secret",
            "python",
            "read a file in the harness user's home",
            f"assert open({c.home_secret!r}).read()\n",
            frozenset({F}),
        ),
        Hostile(
            "py_network_loopback",
            "python",
            "connect to a harness listener on 127.0.0.1",
            f"import socket\nsocket.create_connection(('127.0.0.1', {c.port}), timeout=1).close()\n",
            frozenset({F}),
        ),
        Hostile(
            "py_network_outside",
            "python",
            "open connections to the outside (IP and DNS)",
            attempts
            + "import socket\n"
            + "attempt(lambda: socket.create_connection(('1.1.1.1', 53), timeout=1))\n"
            + "attempt(lambda: socket.getaddrinfo('example.com', 80))\n"
            + "assert ok, 'no network'\n",
            frozenset({F}),
        ),
        Hostile(
            "py_listen",
            "python",
            "listen on a port and keep it open from a detached child",
            "import os, socket, time\n"
            "s = socket.socket()\n"
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('0.0.0.0', {c.listen_port}))\n"
            "s.listen()\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    time.sleep(1000)\n"
            "raise SystemExit(0)\n",
            frozenset({F}),
        ),
        Hostile(
            "py_exit0_before_tests",
            "python",
            "exit(0) in the solution, before the tests",
            he("import sys\nsys.exit(0)\ndef add(a, b):\n    return 0\n"),
            frozenset({F}),
        ),
        Hostile(
            "py_os_exit0_before_tests",
            "python",
            "os._exit(0) in the solution, before the tests",
            he("import os\nos._exit(0)\ndef add(a, b):\n    return 0\n"),
            frozenset({F}),
        ),
        Hostile(
            "py_redefine_check",
            "python",
            "redefine check() (also in builtins) with a wrong solution",
            he(
                "import builtins\ndef check(candidate):\n    pass\nbuiltins.check = check\ndef add(a, b):\n    return 0\n"
            ),
            frozenset({F}),
        ),
        Hostile(
            "py_patch_builtins",
            "python",
            "patch builtins and stdlib helpers the tests use (abs, len, isinstance, math.isclose, AssertionError)",
            he(
                "import builtins, math\nbuiltins.abs = lambda x: 0\nbuiltins.len = lambda x: 0\n"
                "builtins.isinstance = lambda *a: True\nmath.isclose = lambda *a, **k: True\n"
                "builtins.AssertionError = type('Nothing', (Exception,), {})\n"
                "def add(a, b):\n    return 0\n"
            ),
            frozenset({F}),
        ),
        Hostile(
            "py_always_equal",
            "python",
            "return an object whose __eq__ is always True",
            he(
                "class A:\n    def __eq__(self, other):\n        return True\n    __hash__ = None\ndef add(a, b):\n    return A()\n"
            ),
            frozenset({F}),
        ),
        Hostile(
            "py_equal_subclass",
            "python",
            "return an int subclass whose __eq__ is always True",
            he(
                "class I(int):\n    def __eq__(self, other):\n        return True\n    def __ne__(self, other):\n        return False\ndef add(a, b):\n    return I(0)\n"
            ),
            frozenset({F}),
        ),
        Hostile(
            "py_settrace_skip",
            "python",
            "a trace hook that jumps over the assert lines of check()",
            he(
                "import sys\n"
                "def tracer(frame, event, arg):\n"
                "    if frame.f_code.co_name == 'check':\n"
                "        def local(frame, event, arg):\n"
                "            last = frame.f_code.co_firstlineno + 3\n"
                "            if event == 'line' and frame.f_lineno < last:\n"
                "                try:\n"
                "                    frame.f_lineno = last\n"
                "                except ValueError:\n"
                "                    pass\n"
                "            return local\n"
                "        return local\n"
                "    return None\n"
                "sys.settrace(tracer)\n"
                "def add(a, b):\n    return 0\n"
            ),
            frozenset({F}),
        ),
        Hostile(
            "py_del_and_atexit",
            "python",
            "exceptions in __del__, os._exit(0) from __del__ and atexit hooks",
            he(
                "import atexit, os\n"
                "class D:\n    def __del__(self):\n        raise RuntimeError('from __del__')\n"
                "class X:\n    def __del__(self):\n        os._exit(0)\n"
                "atexit.register(os._exit, 0)\n"
                "keep = X()\n"
                "def add(a, b):\n    D()\n    return 0\n"
            ),
            frozenset({F}),
        ),
        Hostile(
            "py_kill_parent",
            "python",
            "kill its parent, PID 1 and every process it can",
            "import os, signal\nfor target in (os.getppid(), 1, -1):\n    try:\n        os.kill(target, signal.SIGKILL)\n    except OSError:\n        pass\n"
            "assert False, 'still alive, and the tests fail'\n",
            frozenset({F, E}),
        ),
        Hostile(
            "py_forge_token",
            "python",
            "write a fake token on the result channel (fd 3) and exit 0",
            "import os\nfor fd in range(3, 10):\n    try:\n        os.write(fd, b'P' + b'0' * 32)\n    except OSError:\n        pass\nos._exit(0)\n",
            frozenset({F}),
        ),
        Hostile(
            "py_file_size_bomb",
            "python",
            "write a file larger than the file-size limit, then claim success",
            "f = open('big', 'wb')\nwhile True:\n    f.write(b'x' * 2 ** 20)\n",
            frozenset({F}),
        ),
        Hostile(
            "py_fd_exhaustion",
            "python",
            "open files until none are left, then exit(0)",
            "fs = []\ntry:\n    while True:\n        fs.append(open('/dev/null'))\nexcept OSError:\n    pass\nraise SystemExit(0)\n",
            frozenset({F}),
        ),
    ]


def _javascript(c: Context, trailer: str) -> list[Hostile]:
    return [
        Hostile("js_infinite_loop", "javascript", "infinite loop", "while (true) {}\n" + trailer, frozenset({T})),
        Hostile(
            "js_exit0_before_tests",
            "javascript",
            "process.exit(0) before the tests",
            "process.exit(0);\nconsole.assert(1 === 2);\n" + trailer,
            frozenset({F}),
        ),
        Hostile(
            "js_memory_bomb",
            "javascript",
            "grow the heap until it runs out",
            "const a = [];\nwhile (true) a.push(new Array(1e6).fill(1.5));\n" + trailer,
            frozenset({E, T}),
        ),
        Hostile(
            "js_fork_bomb",
            "javascript",
            "a detached shell fork bomb, then exit(0)",
            "require('child_process').spawn('sh', ['-c', 'b(){ b|b& }; b'], {detached: true, stdio: 'ignore'});\n"
            "setTimeout(() => process.exit(0), 1500);\n",
            frozenset({F, T}),
        ),
        Hostile(
            "js_env_secret",
            "javascript",
            "read API keys from the environment",
            "if (!Object.values(process.env).some(v => v.includes('sk-'))) throw new Error('no secret');\n" + trailer,
            frozenset({E}),
        ),
        Hostile(
            "js_network",
            "javascript",
            "connect to a harness listener on 127.0.0.1",
            f"require('child_process').execSync('exec 3<>/dev/tcp/127.0.0.1/{c.port}', {{shell: '/bin/bash', stdio: 'ignore'}});\n"
            + trailer,
            frozenset({E}),
        ),
        Hostile(
            "js_write_outside",
            "javascript",
            "overwrite a world-writable file outside its temp dir",
            f"require('fs').writeFileSync({c.canary_dir + '/victim.txt'!r}, 'pwned');\n" + trailer,
            frozenset({E}),
        ),
    ]


def _cpp(c: Context, trailer: str) -> list[Hostile]:
    head = "#include <cassert>\n#include <cstdio>\n#include <cstdlib>\n#include <cstring>\n#include <csignal>\n#include <unistd.h>\n"
    return [
        Hostile(
            "cpp_fork_bomb",
            "cpp",
            "fork bomb",
            head + "int main() { while (true) fork(); }\n" + trailer,
            frozenset({T}),
        ),
        Hostile(
            "cpp_exit0_before_tests",
            "cpp",
            "exit(0) before the tests",
            head + "int main() { exit(0); assert(1 == 2); }\n" + trailer,
            frozenset({F}),
        ),
        Hostile(
            "cpp_memory_bomb",
            "cpp",
            "allocate and touch memory until it runs out",
            head
            + "int main() { while (true) { char *p = (char *)malloc(1 << 20); if (!p) abort(); memset(p, 1, 1 << 20); } }\n"
            + trailer,
            frozenset({E}),
            MEMORY_LIMITS,
        ),
        Hostile(
            "cpp_infinite_loop",
            "cpp",
            "infinite loop",
            head + "int main() { volatile int x = 0; while (true) x++; }\n" + trailer,
            frozenset({T}),
        ),
        Hostile(
            "cpp_kill_parent",
            "cpp",
            "kill its parent, PID 1 and every process it can",
            head
            + "int main() { kill(getppid(), SIGKILL); kill(1, SIGKILL); kill(-1, SIGKILL); assert(1 == 2); }\n"
            + trailer,
            frozenset({F}),
        ),
        Hostile(
            "cpp_daemon",
            "cpp",
            "detach a grandchild that sleeps forever, then exit(0)",
            head
            + "int main() { if (fork() == 0) { setsid(); if (fork() == 0) { "
            + f'execl("/bin/sh", "sh", "-c", "exec -a {c.marker} sleep 1000", (char *)0); }} _exit(0); }} exit(0); }}\n'
            + trailer,
            frozenset({F}),
        ),
        Hostile(
            "cpp_write_outside",
            "cpp",
            "overwrite a world-writable file outside its temp dir",
            head
            + f'int main() {{ FILE *f = fopen("{c.canary_dir}/victim.txt", "w"); assert(f != NULL); fputs("pwned", f); }}\n'
            + trailer,
            frozenset({F}),
        ),
    ]


def _go(c: Context) -> list[Hostile]:
    return [
        Hostile(
            "go_exit0_before_tests",
            "go",
            "os.Exit(0) before the tests",
            'package main\nimport (\n\t"os"\n\t"testing"\n)\nfunc TestAdd(t *testing.T) {\n\tos.Exit(0)\n\tt.Fatal("wrong")\n}\n',
            frozenset({F}),
        ),
        Hostile(
            "go_infinite_loop",
            "go",
            "infinite loop",
            'package main\nimport "testing"\nfunc TestAdd(t *testing.T) {\n\tx := 0\n\tfor {\n\t\tx++\n\t}\n}\n',
            frozenset({T}),
        ),
        Hostile(
            "go_env_secret",
            "go",
            "read API keys from the environment",
            'package main\nimport (\n\t"os"\n\t"strings"\n\t"testing"\n)\nfunc TestAdd(t *testing.T) {\n'
            '\tfor _, e := range os.Environ() {\n\t\tif strings.Contains(e, "sk-") {\n\t\t\treturn\n\t\t}\n\t}\n\tt.Fatal("no secret")\n}\n',
            frozenset({F}),
        ),
        Hostile(
            "go_memory_bomb",
            "go",
            "allocate memory until it runs out",
            'package main\nimport "testing"\nfunc TestAdd(t *testing.T) {\n\tvar keep [][]byte\n\tfor {\n\t\tb := make([]byte, 1<<20)\n\t\tfor i := range b {\n\t\t\tb[i] = 1\n\t\t}\n\t\tkeep = append(keep, b)\n\t}\n}\n',
            frozenset({E, T}),
            MEMORY_LIMITS,
        ),
    ]


def _java(c: Context) -> list[Hostile]:
    return [
        Hostile(
            "java_exit0_before_tests",
            "java",
            "System.exit(0) before the tests",
            "class Problem {\n    public static void main(String[] args) {\n        System.exit(0);\n        assert 1 == 2;\n    }\n}\n",
            frozenset({F}),
        ),
        Hostile(
            "java_infinite_loop",
            "java",
            "infinite loop",
            "class Problem {\n    public static void main(String[] args) {\n        long x = 0;\n        while (true) x++;\n    }\n}\n",
            frozenset({T}),
        ),
        Hostile(
            "java_thread_bomb",
            "java",
            "start sleeping threads until none can be started (the JVM then waits for them)",
            "class Problem {\n    public static void main(String[] args) {\n        while (true) new Thread(() -> {\n"
            "            try { Thread.sleep(1000000); } catch (InterruptedException e) {}\n        }).start();\n    }\n}\n",
            frozenset({T}),
        ),
    ]


def catalogue(c: Context, languages: set[str]) -> list[Hostile]:
    """Every hostile program for the languages given (Python always)."""
    from slmbench.execution.languages import LANGUAGES

    out = _python(c)
    if "javascript" in languages:
        out += _javascript(c, LANGUAGES.get("javascript")().trailer())
    if "cpp" in languages:
        out += _cpp(c, LANGUAGES.get("cpp")().trailer())
    if "go" in languages:
        out += _go(c)
    if "java" in languages:
        out += _java(c)
    return out
