"""Java: compiled by one warm javac (javax.tools) per worker, run with ``java -ea``.

A cold ``javac`` spends about a second starting a JVM and loading the compiler for every
program; a warm compiler process kept by the worker compiles a test file in tens of ms. The
compiler only reads the source and writes class files (annotation processing is off), so it
runs outside the per-sample sandbox; the tests themselves run sandboxed.

The verdict-bearing run goes through a small launcher class: it calls the program's ``main``
and writes the harness token to fd 3 only when ``main`` returned normally, so a sample that
calls ``System.exit(0)`` before the tests finish cannot pass. MultiPL-E's Java tests import
``org.javatuples``; a minimal implementation of its tuple classes is compiled once into the
shared support directory (Maven Central is not reachable from here).
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from slmbench.execution.languages.base import (
    BuildOutput,
    CommandRunner,
    Language,
    Outcome,
    Tool,
    judge_by_markers,
)
from slmbench.toolchains import Check, cached_artifact, run_checked, toolchain_fingerprint
from slmbench.types import Verdict

INSTALL = "apt-get install -y openjdk-17-jdk-headless"
# Small heap and reservations: samples run under RLIMIT_AS, and a JVM reserves a lot of address
# space by default (heap = 1/4 of RAM, 1 GiB class space, 240 MiB code cache).
JVM_FLAGS = (
    "-Xmx1g",
    "-Xss8m",
    "-XX:CompressedClassSpaceSize=64m",
    "-XX:ReservedCodeCacheSize=64m",
    "-XX:MaxMetaspaceSize=256m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Xshare:auto",
    "-XX:-UsePerfData",  # no hsperfdata file in /tmp per run (~2 ms)
)
# No --add-opens: any module option disables CDS's archived module graph (~10 ms per run); the
# launcher sets FileDescriptor.fd through sun.misc.Unsafe (jdk.unsupported, open to all) instead.
MAIN_CLASS_FILE = "slmbench-main-class"

LAUNCHER = r"""
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;

public final class SlmbenchLauncher {
    public static void main(String[] args) throws Throwable {
        Method main = Class.forName(args[0]).getMethod("main", String[].class);
        main.setAccessible(true);
        try {
            main.invoke(null, (Object) new String[0]);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
        String token = System.getenv("SLMBENCH_TOKEN");
        // Write on the inherited fd 3 itself (re-opening /dev/fd/3 is refused for a pipe the
        // harness created as another user), and only when it is the harness's pipe.
        if (token != null && isPipe()) {
            try {
                FileOutputStream out = new FileOutputStream(fd3());
                out.write(token.getBytes(StandardCharsets.UTF_8));
                out.flush();
            } catch (ReflectiveOperationException | java.io.IOException | RuntimeException ignored) {
                // no result channel: the sample does not pass
            }
        }
        System.out.flush();
        System.exit(0);
    }

    private static FileDescriptor fd3() throws ReflectiveOperationException {
        FileDescriptor fd = new FileDescriptor();
        java.lang.reflect.Field field = FileDescriptor.class.getDeclaredField("fd");
        try {
            java.lang.reflect.Field theUnsafe = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");
            theUnsafe.setAccessible(true);
            sun.misc.Unsafe unsafe = (sun.misc.Unsafe) theUnsafe.get(null);
            unsafe.putInt(fd, unsafe.objectFieldOffset(field), 3);
        } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
            field.setAccessible(true);  // a JDK without sun.misc.Unsafe: needs --add-opens
            field.setInt(fd, 3);
        }
        return fd;
    }

    private static boolean isPipe() {
        try {
            return java.nio.file.Files.readSymbolicLink(java.nio.file.Paths.get("/proc/self/fd/3"))
                .toString().startsWith("pipe:");
        } catch (java.io.IOException | UnsupportedOperationException e) {
            return false;
        }
    }
}
"""

COMPILER = r"""
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.*;
import javax.tools.*;

public final class SlmbenchCompiler {
    public static void main(String[] args) throws IOException {
        JavaCompiler compiler = ToolProvider.getSystemJavaCompiler();
        StandardJavaFileManager files = compiler.getStandardFileManager(null, null, StandardCharsets.UTF_8);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, "UTF-8");
        String line;
        while ((line = in.readLine()) != null) {
            String[] req = line.split("\t");  // source, output dir, class path
            DiagnosticCollector<JavaFileObject> diags = new DiagnosticCollector<>();
            List<String> options = Arrays.asList(
                "-d", req[1], "-cp", req[2], "-proc:none", "-nowarn", "-Xlint:none", "-encoding", "UTF-8");
            String first = "";
            boolean ok;
            try {
                ok = compiler.getTask(null, files, diags, options, null,
                    files.getJavaFileObjects(new File(req[0]))).call();
            } catch (Throwable t) {
                ok = false;
                first = "compiler crashed: " + t;
            }
            for (Diagnostic<? extends JavaFileObject> d : diags.getDiagnostics()) {
                if (d.getKind() == Diagnostic.Kind.ERROR && first.isEmpty()) {
                    first = "line " + d.getLineNumber() + ": " + d.getMessage(Locale.ROOT);
                }
            }
            out.println(ok ? "OK" : "ERR " + first.replace('\n', ' ').replace('\r', ' '));
        }
    }
}
"""

# org.javatuples as MultiPL-E's Java tests use it: Pair.with, getValue0/1, value equality, and
# the "[a, b]" string form. Written here from the library's documented behaviour.
TUPLES = {
    "Pair": ("A", "B"),
    "Triplet": ("A", "B", "C"),
    "Quartet": ("A", "B", "C", "D"),
}


def _tuple_source(name: str, params: tuple[str, ...]) -> str:
    n = len(params)
    tp = ", ".join(params)
    fields = "\n".join(f"    private final {p} value{i};" for i, p in enumerate(params))
    args = ", ".join(f"{p} value{i}" for i, p in enumerate(params))
    assigns = "\n".join(f"        this.value{i} = value{i};" for i in range(n))
    names = ", ".join(f"value{i}" for i in range(n))
    getters = "\n".join(f"    public {p} getValue{i}() {{ return value{i}; }}" for i, p in enumerate(params))
    return f"""package org.javatuples;

import java.util.Arrays;
import java.util.List;

public final class {name}<{tp}> implements java.io.Serializable, Comparable<{name}<{tp}>> {{
{fields}

    public {name}({args}) {{
{assigns}
    }}

    public static <{tp}> {name}<{tp}> with({args}) {{
        return new {name}<>({names});
    }}

{getters}

    public int getSize() {{ return {n}; }}

    public List<Object> toList() {{ return Arrays.asList(new Object[] {{{names}}}); }}

    public Object[] toArray() {{ return new Object[] {{{names}}}; }}

    @Override
    public boolean equals(Object other) {{
        if (this == other) return true;
        if (!(other instanceof {name})) return false;
        return toList().equals((({name}<?{", ?" * (n - 1)}>) other).toList());
    }}

    @Override
    public int hashCode() {{ return toList().hashCode(); }}

    @Override
    public String toString() {{ return toList().toString(); }}

    @SuppressWarnings({{"unchecked", "rawtypes"}})
    @Override
    public int compareTo({name}<{tp}> other) {{
        Object[] a = toArray();
        Object[] b = other.toArray();
        for (int i = 0; i < a.length; i++) {{
            int c = ((Comparable) a[i]).compareTo(b[i]);
            if (c != 0) return c;
        }}
        return 0;
    }}
}}
"""


def support_dir() -> Path:
    """Launcher, warm compiler and org.javatuples classes, compiled once per JDK."""
    key = toolchain_fingerprint(["javac", "-version"], extra=LAUNCHER + COMPILER + repr(TUPLES) + "v3")

    def build(tmp: Path) -> None:
        src = tmp / "src"
        (src / "org" / "javatuples").mkdir(parents=True)
        sources = [src / "SlmbenchLauncher.java", src / "SlmbenchCompiler.java"]
        sources[0].write_text(LAUNCHER)
        sources[1].write_text(COMPILER)
        for name, params in TUPLES.items():
            path = src / "org" / "javatuples" / f"{name}.java"
            path.write_text(_tuple_source(name, params))
            sources.append(path)
        run_checked(
            ["javac", "-nowarn", "-d", str(tmp / "classes"), *map(str, sources)],
            tmp,
            "compiling the Java support classes",
        )

    return cached_artifact("java-support", key, build) / "classes"


_JAVA_NOISE = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])+\'', re.DOTALL)
_JAVA_TYPE = re.compile(r"\b(?:class|enum|record|interface)\s+([A-Za-z_$][\w$]*)\s*(?=[{<(]|extends\b|implements\b)")


def main_class(source: str) -> str:
    """The class whose ``main`` runs the tests: the last type declared before ``void main(``
    (comments and string literals ignored)."""
    code = _JAVA_NOISE.sub(" ", source)
    m = re.search(r"\bstatic\s+void\s+main\s*\(", code)
    head = code[: m.start()] if m else code
    names = _JAVA_TYPE.findall(head)
    return names[-1] if names else "Main"


class _WarmCompiler:
    """One long-lived JVM running SlmbenchCompiler; one request at a time."""

    def __init__(self, classes: Path) -> None:
        self.classes = classes
        self.proc: subprocess.Popen[str] | None = None
        self.lock = threading.Lock()

    def _start(self) -> subprocess.Popen[str]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                # C1 only: javac warms up in fewer programs (~20% less over the first hundred),
                # and no C2 threads take CPU from the other workers' samples
                [
                    "java",
                    "-Xmx768m",
                    "-XX:+UseSerialGC",
                    "-XX:TieredStopAtLevel=1",
                    "-XX:-UsePerfData",
                    "-cp",
                    str(self.classes),
                    "SlmbenchCompiler",
                ],  # fmt: skip
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                bufsize=1,
            )
        return self.proc

    def compile(self, src: Path, out_dir: Path, classpath: str, timeout_s: float) -> tuple[bool | None, str]:
        """(ok, first error); ok is None on timeout, and on a compiler that died twice."""
        with self.lock:
            for _ in range(2):  # a compiler that died (killed, out of memory) is restarted once
                reply = self._ask(f"{src}\t{out_dir}\t{classpath}\n", timeout_s)
                if reply is None:
                    self.close()
                    return None, ""
                if reply:
                    line = reply.rstrip("\n")
                    return (True, "") if line == "OK" else (False, line[4:] or "compilation failed")
                self.close()
            return None, "the warm Java compiler died"

    def _ask(self, request: str, timeout_s: float) -> str | None:
        """The compiler's reply line; "" when it died, None on timeout."""
        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(request)
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return ""
        reply: list[str] = []
        reader = threading.Thread(target=lambda: reply.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout_s)
        return reply[0] if reply else None

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


class Java(Language):
    name = "java"
    source_file = "Main.java"
    tools = (
        Tool("javac", ("-version",), INSTALL),
        Tool("java", ("-version",), INSTALL),
    )
    failed_markers: ClassVar[tuple[str, ...]] = ("java.lang.AssertionError",)

    def __init__(self) -> None:
        self._compiler: _WarmCompiler | None = None

    def checks(self) -> list[Check]:
        return []

    def build(self, src: Path, out_dir: Path, run: CommandRunner, timeout_s: float) -> BuildOutput:
        start = time.perf_counter()
        classes = support_dir()
        if self._compiler is None:
            self._compiler = _WarmCompiler(classes)
        (out_dir / MAIN_CLASS_FILE).write_text(main_class(src.read_text(encoding="utf-8", errors="replace")))
        ok, message = self._compiler.compile(src, out_dir / "classes", str(classes), timeout_s)
        if ok is None and message:  # the warm compiler keeps dying: the cold, sandboxed javac
            return super().build(src, out_dir, run, timeout_s)
        for p in out_dir.rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        seconds = time.perf_counter() - start
        if ok is None:
            return BuildOutput(False, f"compilation timed out after {timeout_s:.0f} s", seconds)
        return BuildOutput(ok, message, seconds)

    def build_commands(self, src: Path, out_dir: Path) -> Sequence[Sequence[str]]:
        # the cold path (what `build` replaces): kept for the naive baseline and for debugging
        return [
            [
                "javac",
                "-nowarn",
                "-encoding",
                "UTF-8",
                "-cp",
                str(support_dir()),
                "-d",
                str(out_dir / "classes"),
                str(src),
            ]
        ]

    def run_command(self, src: Path, out_dir: Path) -> Sequence[str]:
        try:
            cls = (out_dir / MAIN_CLASS_FILE).read_text().strip()
        except OSError:
            cls = main_class(src.read_text(encoding="utf-8", errors="replace"))
        cp = f"{out_dir / 'classes'}:{support_dir()}"
        return ["java", "-ea", *JVM_FLAGS, "-cp", cp, "SlmbenchLauncher", cls]

    def judge(self, outcome: Outcome) -> tuple[Verdict, str]:
        return judge_by_markers(outcome, self.failed_markers, ("Exception in thread", "Error:"))

    def close(self) -> None:
        if self._compiler is not None:
            self._compiler.close()
            self._compiler = None
