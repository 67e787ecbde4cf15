"""Inline Python: what runs in a sample's process (no interpreter start-up per sample).

The program is compiled by the worker (``compile_program``; it never forks, so the compiler's
memory costs nothing per sample there) and executed in a sandboxed child (``run``) in a fresh
``__main__`` module. Only if that returns normally does the child write the result token;
``exit(0)``/``os._exit(0)`` before the tests end, an exception, or a signal all leave the
sample not passed. What the program prints never matters.

Verdicts: a program that does not compile is ``error`` (nothing was tested); an
AssertionError or any other exception while running is ``failed``, with the exception as the
message; SystemExit of any code is ``failed`` ("exited before the tests finished").

The guard (:func:`guarded_program`): in a plain HumanEval program the solution runs in the
same namespace and process as its tests, so it can return objects whose ``__eq__`` is always
True, or patch ``builtins``/stdlib functions the tests use. A task that builds its program
with ``guarded_program(solution, tests, entry_point)`` gets, when run here, the solution
executed first, then: trace/profile hooks removed, ``builtins`` and the preloaded stdlib
modules restored to their pristine state, the tests executed fresh (so ``check`` and its
helpers are the dataset's), and the candidate wrapped so that what it returns must be plain
built-in data (exact int, float, str, list, tuple, dict, set, ...; subclasses and numpy
scalars are converted to it, anything else fails the sample). Run by any other Python (no
guard), the same text is the ordinary program: solution, tests, ``check(entry_point)``.

This module is imported by the zygote (zygote.py), whose memory every sample's process starts
from: it imports nothing of slmbench but the result channel's fd number.
"""

from __future__ import annotations

import builtins
import linecache
import os
import re
import sys
import traceback
import types
from collections.abc import Callable, Sequence
from typing import NoReturn, Union

from slmbench.execution.channel import RESULT_FD

# Result-channel record kinds written by the inline child (first byte).
PASSED = b"P"
SYNTAX = b"S"
EXCEPTION = b"X"
EXITED = b"Q"
MESSAGE_CAP = 2000

GUARD_BEGIN = "# slmbench-guard: tests for {entry} via {checker} follow"
GUARD_END = "{checker}({entry})  # slmbench-guard: end"
# (a pattern, compiled by re on first use: the zygote, which imports this module, never uses it)
_BEGIN = r"^# slmbench-guard: tests for ([A-Za-z_]\w*) via ([A-Za-z_]\w*) follow$"
_TOP_LINE = r"\n(?=\S)"  # a line that begins at column 0 with something (SharedTails)
_MODULE_GLOBAL = r"(?m)^(?:global|nonlocal)\b"

# Pristine builtins and preloaded stdlib modules, captured by the worker before any sample ran
# (see prepare_worker); the guard restores them after the solution ran.
_PRISTINE: tuple[dict, list[tuple[str, types.ModuleType, dict]]] | None = None


def guarded_program(solution: str, tests: str, entry_point: str, checker: str = "check") -> str:
    """The test program for a HumanEval-style problem, with the guard markers (module doc).

    ``solution`` is the whole code credited to the model (prompt + completion, or its program),
    ``tests`` the dataset's test code defining ``checker``. Equivalent, for any Python that
    ignores the markers, to ``solution + tests + checker(entry_point)``."""
    begin = GUARD_BEGIN.format(entry=entry_point, checker=checker)
    end = GUARD_END.format(entry=entry_point, checker=checker)
    return f"{solution}\n{begin}\n{tests}\n{end}\n"


def split_guarded(program: str) -> tuple[str, str, str, str] | None:
    """(solution, tests, entry_point, checker) of a guarded program, else None. The *last*
    begin marker counts: anything before it, markers included, is the solution's."""
    if "# slmbench-guard: tests for " not in program:  # the common case, without the regex
        return None
    matches = list(re.finditer(_BEGIN, program, re.M))
    if not matches:
        return None
    m = matches[-1]
    entry, checker = m.group(1), m.group(2)
    end = GUARD_END.format(entry=entry, checker=checker)
    body = program.rstrip("\n")
    if not body.endswith("\n" + end):
        return None
    return program[: m.start()], body[m.end() : len(body) - len(end)], entry, checker


def prepare_worker(preload: Sequence[str]) -> None:
    """Called once, before any sample, in the process samples are forked from (the zygote, or a
    worker that forks them itself): what every sample then starts with, and a snapshot of what
    the guard restores."""
    global _PRISTINE
    import random
    import site

    # Started without site (``python -S``): the builtins an ordinary Python has (exit, quit,
    # help, copyright, ...), without site's path set-up and .pth hooks.
    site.setquit()
    site.setcopyright()
    site.sethelper()
    # Samples that use random without seeding it get the same numbers on every run.
    random.seed(0)
    for name in preload:  # imported here, so that samples importing them pay nothing
        try:
            __import__(name)
        except ImportError:
            pass
    modules = [(n, sys.modules[n], dict(vars(sys.modules[n]))) for n in preload if n in sys.modules]
    _PRISTINE = (dict(vars(builtins)), modules)


class NotPlainData(BaseException):
    """The candidate returned something other than plain data (BaseException: a test's
    ``except Exception`` cannot swallow it)."""


# What ``run`` executes: the program's code object, or a list of the code of its parts (run one
# after the other: see SharedTails), or for a guarded program (solution code, test code, entry
# point, checker); a SYNTAX record when it does not compile. Code objects and tuples and lists
# of them and of strings pass through ``marshal`` (worker -> zygote).
Compiled = Union[types.CodeType, list, tuple, bytes]


def compile_program(
    program: str, source_path: str, tests: CompiledTests | None = None, tails: SharedTails | None = None
) -> Compiled:
    """Compile ``program`` as ``run`` would: the whole of it, or for a guarded program its
    solution and its tests apart (the tests' line numbers those of the whole program; from
    ``tests`` when given, which reuses the code of tests it compiled before). With ``tails``, a
    plain program that ends with a tail another program ended with (a problem's tests, behind
    each of its samples) is compiled as its head and that tail, the tail's code from ``tests``.

    A guarded program is not also compiled whole: when both parts compile, so does the whole
    (the solution ends with every bracket, string and block closed, and the tests are the
    dataset's). When one does not, the whole program's own error is reported, as a plain
    Python running it would report it, if it has one."""
    guarded = split_guarded(program)
    if guarded is None and tails is not None and tests is not None:
        parts = _compile_parts(program, source_path, tests, tails)
        if parts is not None:
            return parts
    try:
        if guarded is None:
            return compile(program, source_path, "exec", dont_inherit=True)
        solution, test_text, entry, checker = guarded
        code = compile(solution, source_path, "exec", dont_inherit=True)
        lines_before = solution.count("\n")
        if tests is None:
            test_code = compile("\n" * lines_before + test_text, source_path, "exec", dont_inherit=True)
        else:
            test_code = tests(test_text, lines_before, source_path)
        return code, test_code, entry, checker
    except BaseException as exc:  # noqa: BLE001 - SyntaxError, ValueError (NUL bytes), MemoryError, ...
        error = exc if guarded is None else _whole_program_error(program, source_path) or exc
        return SYNTAX + _describe_syntax(error).encode(errors="replace")


def _compile_parts(program: str, source_path: str, tests: CompiledTests, tails: SharedTails) -> list | None:
    """[head, tail] code for a program with a known tail; None: compile it whole (no known
    tail, or a part does not compile: the whole program then reports its own error)."""
    split = tails.split(program)
    if split is None:
        return None
    head, tail = split
    try:
        tail_code = tests(tail, head.count("\n"), source_path)
    except BaseException:  # noqa: BLE001 - not a tail of its own (it continues the head)
        tail_code = None
    if tail_code is None or "__doc__" in tail_code.co_names:
        # (__doc__: its first statement is a string, which alone would be its docstring)
        tails.reject(tail)
        return None
    try:
        head_code = compile(head, source_path, "exec", dont_inherit=True)
    except BaseException:  # noqa: BLE001 - the whole program's compile says what is wrong
        return None
    return [head_code, tail_code]


class SharedTails:
    """Tails that plain programs share, found by comparing programs that end alike: the tests
    a task appends to each of a problem's samples (HumanEval's tests and ``check(...)``, MBPP's
    asserts, EvalPlus's inputs), which are most of compiling a sample (HumanEval: 71 of 119 us).

    A tail begins at a top-level line (column 0) of the longest end that two programs have in
    common. Run after its head in the same namespace, it does what the whole program does,
    provided both parts compile alone (then every bracket, string, block and statement of the
    head is closed where the tail begins, and the tail cannot continue one: an ``else``,
    ``except`` or decorated line does not compile alone) and neither changes how the other
    compiles (no ``__future__`` import anywhere, no docstring made of the tail's first line, no
    module-level ``global``)."""

    KEY = 64  # the characters at the end that index programs and tails
    MIN_TAIL = 64

    def __init__(self, capacity: int = 8 << 20) -> None:
        self._tails: dict[str, list[str]] = {}  # by their last KEY characters
        self._rejected: set[str] = set()
        self._last: dict[str, str] = {}  # the last program without a known tail, by its end
        self._capacity = capacity  # characters of tails kept, and twice that of programs
        self._size = self._last_size = 0

    def split(self, program: str) -> tuple[str, str] | None:
        """(head, tail) of ``program``, the tail a known one or one it shares with the last
        program that ended alike; None otherwise."""
        if len(program) < 2 * self.MIN_TAIL or "__future__" in program:
            return None
        key = program[-self.KEY :]
        for tail in self._tails.get(key, ()):
            if len(tail) < len(program) and program.endswith(tail) and program[-len(tail) - 1] == "\n":
                return None if tail in self._rejected else (program[: -len(tail)], tail)
        other = self._last.get(key)
        if self._last_size + len(program) > 2 * self._capacity:
            self._last.clear()
            self._last_size = 0
            other = None
        self._last_size += len(program) - len(other or "")
        self._last[key] = program
        tail = None if other is None else _shared_tail(program, other, self.MIN_TAIL)
        if tail is None:
            return None
        if self._size + len(tail) > self._capacity:
            self._tails.clear()  # a run works through problems in order: the old ones are done
            self._rejected.clear()
            self._size = 0
        self._size += len(tail)
        self._tails.setdefault(key, []).append(tail)
        if re.search(_MODULE_GLOBAL, tail):
            # a module-level global declaration may follow an assignment in the head, which the
            # whole program's compile refuses
            self.reject(tail)
            return None
        return program[: -len(tail)], tail

    def reject(self, tail: str) -> None:
        """A tail that must not be run apart: the programs that end with it compile whole."""
        self._rejected.add(tail)


def _shared_tail(a: str, b: str, least: int) -> str | None:
    """The end of ``a`` that ``b`` ends with too, from its first top-level line on."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:  # the length of the common end: slices compared in C
        mid = (lo + hi + 1) // 2
        if a[-mid:] == b[-mid:]:
            lo = mid
        else:
            hi = mid - 1
    start = len(a) - lo
    line = re.compile(_TOP_LINE).search(a, max(start - 1, 0))
    if line is None or len(a) - line.end() < least:
        return None
    return a[line.end() :]


def _whole_program_error(program: str, source_path: str) -> BaseException | None:
    try:
        compile(program, source_path, "exec", dont_inherit=True)
    except BaseException as exc:  # noqa: BLE001
        return exc
    return None


class CompiledTests:
    """The compiled tests of guarded programs (and the tails plain programs share, see
    SharedTails), kept by test text: the n samples of a problem share their tests, and compiling them is most of compiling a sample (HumanEval: 0.07 of
    0.12 ms). A kept code object is reused with its line numbers moved to where the tests
    begin in the new program: every instruction of the tests then has the line a compile of
    that program gives it (all but the module's first, RESUME, which runs none of their code).

    Tests whose compile warned are compiled afresh each time, so that each sample's process
    shows the warnings as a plain Python would."""

    def __init__(self, capacity: int = 8 << 20, warned: Callable[[], int] = lambda: 0) -> None:
        self._kept: dict[tuple[str, str], tuple[types.CodeType, int]] = {}
        self._capacity = capacity  # characters of test text kept (their code: a few times that)
        self._size = 0
        self._warned = warned  # how many warnings the compiler has given so far

    def __call__(self, tests: str, lines_before: int, source_path: str) -> types.CodeType:
        kept = self._kept.get((tests, source_path))
        if kept is not None and kept[1] <= lines_before:  # (a code's first line cannot go below 1)
            code, at = kept
            return code if at == lines_before else _moved(code, lines_before - at)
        warned = self._warned()
        code = compile("\n" * lines_before + tests, source_path, "exec", dont_inherit=True)
        if self._warned() == warned:
            if self._size + len(tests) > self._capacity:
                self._kept.clear()  # a run works through problems in order: the old ones are done
                self._size = 0
            self._size += len(tests) if (tests, source_path) not in self._kept else 0
            self._kept[(tests, source_path)] = (code, lines_before)
        return code


def _moved(code: types.CodeType, lines: int) -> types.CodeType:
    """``code`` with every line number, its nested functions' and classes' too, ``lines`` on."""
    consts = tuple(_moved(c, lines) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_firstlineno=code.co_firstlineno + lines, co_consts=consts)


def main_module(source_path: str) -> types.ModuleType:
    """A fresh ``__main__`` for the program at ``source_path``, installed as a script's is
    (``sys.modules``, ``sys.argv``, ``sys.path[0]``)."""
    module = types.ModuleType("__main__")
    module.__file__ = source_path
    module.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = module
    sys.argv = [source_path]
    sys.path[0] = os.path.dirname(source_path)
    return module


def show_source(source_path: str, source: Callable[[], str]) -> None:
    """Tracebacks and inspect.getsource() read the program's text through linecache: no file
    needed. A lazy entry (linecache's own format): ``source`` is called only if something reads
    the lines. (The zygote makes it once for all its samples: made in each, it cost a few page
    copies per sample.)"""
    linecache.cache[source_path] = (source,)


def run(
    program: str,
    source_path: str,
    token: str,
    compiled: Compiled | None = None,
    module: types.ModuleType | None = None,
) -> NoReturn:  # pragma: no cover - child
    """Execute ``program`` (``compiled``, or compiled here when None) as ``__main__`` in this
    forked, sandboxed process (``module``: its fresh main_module, made now when None), and
    write its result record; never returns."""
    # Bind what we need after the sample ran: it may delete or replace os.write/_exit.
    write, exit_, fd = os.write, os._exit, RESULT_FD
    if compiled is None:
        compiled = compile_program(program, source_path)

    def source() -> str:
        return program

    show_source(source_path, source)
    record = execute(compiled, source, source_path, module)
    if record is None:
        write(fd, PASSED + token.encode())
        exit_(0)
    try:
        write(fd, record)
    finally:
        exit_(1)


def execute(
    compiled: Compiled, source: Callable[[], str], source_path: str, module: types.ModuleType | None = None
) -> bytes | None:  # pragma: no cover - runs in the child
    """Run ``compiled`` as ``__main__`` (``source`` gives its text, for a failure's message; see
    also show_source): None when it returned normally (its output flushed), else its
    result-channel record."""
    if isinstance(compiled, bytes):
        return compiled
    if module is None:
        module = main_module(source_path)
    try:
        if isinstance(compiled, tuple):
            code, test_code, entry, checker = compiled
            _run_guarded(code, test_code, module.__dict__, entry, checker, _PRISTINE)
        elif isinstance(compiled, list):
            for part in compiled:
                exec(part, module.__dict__)
        else:
            exec(compiled, module.__dict__)
    except BaseException as exc:  # noqa: BLE001 - every failure of the sample is a verdict
        return failure_record(exc, source, source_path)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001 - a closed or replaced stdout is not our concern
        pass
    return None


def failure_record(exc: BaseException, source: Callable[[], str], source_path: str) -> bytes:
    """The result-channel record of a program that raised ``exc`` (SystemExit: it exited before
    the tests finished); any other exception's traceback is printed on stderr, as Python's own."""
    if isinstance(exc, SystemExit):
        record = EXITED + f"exited before the tests finished (exit({_safe_repr(exc.code)}))".encode(errors="replace")
    else:
        _print_traceback(exc)
        record = EXCEPTION + describe_exception(exc, source_path, source()).encode(errors="replace")
    return record[: MESSAGE_CAP + 1]


def _run_guarded(
    code: types.CodeType, test_code: types.CodeType, ns: dict, entry: str, checker: str, pristine: tuple | None
) -> None:  # pragma: no cover - runs in the child
    plain, settrace, setprofile, setswitch = _plain, sys.settrace, sys.setprofile, sys.setswitchinterval
    modules_table = sys.modules
    exec(code, ns)  # the solution: everything below runs after it, on our terms
    settrace(None)
    setprofile(None)
    # Threads the solution left behind get no chance to run while the tests do (the main
    # thread keeps the GIL unless it blocks).
    setswitch(1e6)
    if pristine is not None:
        saved_builtins, saved_modules = pristine
        live = builtins.__dict__  # no builtin name may be looked up between clear and update
        live.clear()
        live.update(saved_builtins)
        for name, mod, saved in saved_modules:
            live = mod.__dict__
            live.clear()
            live.update(saved)
            modules_table[name] = mod
    ns["__builtins__"] = builtins
    if entry not in ns:
        raise NameError(f"name {entry!r} is not defined")
    candidate = ns[entry]
    exec(test_code, ns)  # the dataset's tests, defining a fresh checker
    rejected: list[BaseException] = []

    def guarded(*args: object, **kwargs: object) -> object:
        try:
            return plain(candidate(*args, **kwargs))
        except NotPlainData as exc:
            rejected.append(exc)
            raise

    ns[checker](guarded)
    if rejected:
        raise rejected[0]


_EXACT = (int, float, bool, str, bytes, complex, type(None), range)
_CONVERTIBLE = (int, float, complex, str, bytes, list, tuple, dict, set, frozenset)


def _plain(x: object, depth: int = 0) -> object:  # pragma: no cover - runs in the child
    """``x`` as exact built-in data (compared by the real ``==``), or NotPlainData. Every
    conversion's result is checked again, so a hostile object can only choose which plain
    value it stands for, exactly as if the solution had returned that value."""
    if depth > 200:
        raise NotPlainData("the solution returned data nested too deeply")
    t = type(x)
    if t in _EXACT:
        return x
    if t is list:
        return [_plain(v, depth + 1) for v in x]
    if t is tuple:
        return tuple(_plain(v, depth + 1) for v in x)
    if t is dict:
        return {_plain(k, depth + 1): _plain(v, depth + 1) for k, v in x.items()}
    if t is set:
        return {_plain(v, depth + 1) for v in x}
    if t is frozenset:
        return frozenset(_plain(v, depth + 1) for v in x)
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(x, numpy.generic):
        return _plain(x.item(), depth + 1)  # numpy scalars: np.int64(3) -> 3
    for base in _CONVERTIBLE:
        if isinstance(x, base):  # subclasses (namedtuple, IntEnum, ...) -> the base type
            return _plain(base(x), depth + 1)
    raise NotPlainData(f"the solution returned a {_type_name(t)} object, not plain data")


def _type_name(t: type) -> str:
    try:
        return str(type.__getattribute__(t, "__qualname__"))[:100]
    except BaseException:  # noqa: BLE001
        return "non-builtin"


def _describe_syntax(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        where = f" (line {exc.lineno})" if exc.lineno else ""
        return f"{type(exc).__name__}: {exc.msg}{where}"
    return f"{type(exc).__name__}: {_safe_str(exc)}"


def describe_exception(exc: BaseException, source_path: str, program: str) -> str:
    """``Type: message``; for a bare ``assert`` (no message) the failing line of the program."""
    text = _safe_str(exc)
    if text:
        return f"{type(exc).__name__}: {text}"[:MESSAGE_CAP]

    try:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == source_path]
    except BaseException:  # noqa: BLE001
        frames = []
    if frames and frames[-1].lineno:
        lines = program.splitlines()
        line = lines[frames[-1].lineno - 1].strip() if frames[-1].lineno <= len(lines) else ""
        return f"{type(exc).__name__} at line {frames[-1].lineno}: {line}"[:MESSAGE_CAP]
    return type(exc).__name__


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)[:MESSAGE_CAP]
    except BaseException:  # noqa: BLE001 - a hostile __str__
        return "<unprintable>"


def _safe_repr(value: object) -> str:
    try:
        return repr(value)[:200]
    except BaseException:  # noqa: BLE001
        return "<unprintable>"


def _print_traceback(exc: BaseException) -> None:
    try:
        # from the program's own first frame, as ``python program.py`` prints it: not the frames
        # of this module that ran it (the zygote runs a plain program with none)
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next
        traceback.print_exception(type(exc), exc, tb, file=sys.__stderr__)
        sys.__stderr__.flush()
    except BaseException:  # noqa: BLE001
        pass
