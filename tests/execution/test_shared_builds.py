"""Shared builds: distinct programs compiled by one compiler run, each run alone, with the
verdicts they get when built alone (Language.shared_build_limit, builds.build_shared)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from slmbench.data import DataSource
from slmbench.execution.builds import failed_members, program_relative
from slmbench.execution.cache import BuildCache
from slmbench.execution.gathering import Gatherer
from slmbench.execution.languages.base import BuildOutput
from slmbench.execution.languages.cpp import INSTANCES_LINKED, TRAILER, Cpp, extern_vectors
from slmbench.execution.languages.rust import Rust
from slmbench.execution.pool import Executor
from slmbench.tasks import create_task
from slmbench.types import ExecLimits, ExecRequest, Verdict


def _req(program: str, language: str = "rust") -> ExecRequest:
    return ExecRequest(key=program, language=language, program=program)


def test_gatherer_sends_full_groups_then_what_is_left_largest_first():
    gathered: Gatherer[str] = Gatherer(lambda r: None if r.program.startswith("x") else (r.program[0], 3))
    assert gathered.hold("x1", _req("x1")) is None  # built alone
    assert gathered.hold("a1", _req("a1")) == []
    assert gathered.hold("b1", _req("b1")) == []
    assert gathered.hold("a2", _req("a2")) == []
    assert gathered.hold("a3", _req("a3")) == ["a1", "a2", "a3"]
    assert gathered.hold("c1", _req("c1")) == []
    assert gathered.hold("c2", _req("c2")) == []
    assert gathered
    assert gathered.take() == ["c1", "c2"]
    assert gathered.take() == ["b1"]
    assert not gathered and gathered.take() is None


def test_failed_members_are_found_by_the_lines_the_compiler_blames():
    lines = ((3, 10), (13, 20), (23, 30))
    gcc = "main.cpp: In function 'int m::f()':\n/w/main.cpp:15:12: error: 'x' was not declared\n"
    assert failed_members(gcc, "main.cpp", lines) == {1}
    rustc = "error[E0308]: mismatched types\n  --> /w/main.rs:4:5\n  --> /w/main.rs:29:1\n"
    assert failed_members(rustc, "main.rs", lines) == {0, 2}
    # a line outside every member (the dispatcher, a header): nobody can be blamed
    assert failed_members("/w/main.cpp:12:1: error: x\n/w/main.cpp:15:1: error: y\n", "main.cpp", lines) == set()
    assert failed_members("ld: undefined reference to `f'\n", "main.cpp", lines) == set()


def test_publish_enters_each_member_with_its_source_and_a_link_to_the_shared_output(tmp_path):
    cache = BuildCache(tmp_path / "cache")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "main.rs").write_text("both programs")
    (shared / "test.bin").write_bytes(b"\x7fELF")
    for member, program in enumerate(["fn a() {}", "fn b() {}"]):
        out = BuildOutput(True, "", 0.5, member=member)
        assert cache.publish("rust", "main.rs", program, shared, out, runner="r1")
        assert not cache.publish("rust", "main.rs", program, shared, out, runner="r1")  # there already
    entry = cache.entry("rust", "fn b() {}", {}, "r1")
    assert (entry / "main.rs").read_text() == "fn b() {}"
    assert os.path.samefile(entry / "test.bin", shared / "test.bin")
    assert json.loads((entry / "build.json").read_text())["member"] == 1
    assert cache.has("rust", "fn a() {}", {}, "r1") and not cache.has("rust", "fn a() {}", {}, "r2")
    # what get() gives a later run: the member index with the build
    built = cache.get("rust", "main.rs", "fn b() {}", {}, lambda src, out: BuildOutput(False), runner="r1")
    assert built.cached and built.output.member == 1 and built.output.ok


def test_rust_programs_that_could_mean_something_else_in_a_module_are_built_alone():
    rust = Rust()
    tests = "#[cfg(test)]\nmod tests {\n    use super::*;\n    #[test]\n    fn t() {}\n}\n"
    assert rust.shared_group("fn f() -> i32 { 1 }\n" + tests) == "crate"
    for alone in (
        "use super::*;\nfn f() {}\n",  # an error alone; would import the shared crate's root
        "#![allow(unused)]\nfn f() {}\n",
        "fn f() { crate::g() }\nfn g() {}\n",
        "#[no_mangle]\npub fn f() {}\n",
        "fn f() -> u32 { line!() }\n",
        "fn f() -> usize { std::env::args().count() }\n",
        "mod other;\n",
        "fn f() -> &'static str { std::any::type_name::<i32>() }\n",
        "fn f() -> i32 {\n    let v = vec![1, 2];\n",  # cut off: its module would end inside it
    ):
        assert rust.shared_group(alone + tests) is None, alone
    assert rust.shared_group("fn f(line: i32) -> bool { line != 0 }\n") == "crate"


def _programs(data_dir: Path, task_name: str, count: int, extra_bodies: dict[str, str]) -> list[ExecRequest]:
    task = create_task(task_name, source=DataSource(data_dir=data_dir))
    limits = ExecLimits(timeout_s=3.0)
    reqs = []
    for problem in task.problems()[:count]:
        for label, solution, _ in task.selftest_cases(problem):
            (req,) = task.programs(problem, solution, limits).values()
            reqs.append(dataclasses.replace(req, key=f"{problem.problem_id}#{label}"))
    problem = task.problems()[0]
    for label, body in extra_bodies.items():
        (req,) = task.programs(problem, problem.prompt + body, limits).values()
        reqs.append(dataclasses.replace(req, key=label))
    return reqs


def _both_ways(reqs: list[ExecRequest], tmp_path: Path) -> tuple[dict, dict, Path]:
    runs = {}
    for shared in (True, False):
        cache = tmp_path / f"cache-{shared}"
        with Executor(cache_dir=cache, shared_builds=shared) as ex:
            runs[shared] = {r.key: r for r in ex.run(reqs)}
    return runs[True], runs[False], tmp_path / "cache-True"


def _members_built_together(cache: Path, language: str) -> int:
    metas = [json.loads(p.read_text()) for p in (cache / "builds" / language).glob("*/*/build.json")]
    return sum("member" in m for m in metas)


@pytest.mark.toolchain
def test_rust_shared_builds_give_the_verdicts_of_builds_alone(data_dir, tmp_path):
    extra = {
        "compile-error": '    return "x";\n}\n',
        "top-level-super": "    0.0\n}\nuse super::*;\n",
    }
    reqs = _programs(data_dir, "humanevalpack-rust", 10, extra)
    shared, alone, cache = _both_ways(reqs, tmp_path)
    assert {k: r.verdict for k, r in shared.items()} == {k: r.verdict for k, r in alone.items()}
    assert shared["compile-error"].verdict is Verdict.COMPILE_ERROR
    assert shared["top-level-super"].verdict is Verdict.COMPILE_ERROR
    # its own message, from its own build alone
    assert shared["compile-error"].message == alone["compile-error"].message
    assert sum(r.verdict is Verdict.PASSED for r in shared.values()) == 10
    # the 20 HumanEvalPack programs were built together (those two alone), with a compile time share
    assert _members_built_together(cache, "rust") == 20
    assert all(0 < shared[k].compile_s < alone[k].compile_s for k in shared if "#" in k)


@pytest.mark.toolchain
def test_cpp_shared_builds_give_the_verdicts_and_messages_of_builds_alone(data_dir, tmp_path):
    extra = {
        "compile-error": "    return undeclared;\n}\n",
        # a macro reaches past its namespace: built alone
        "macro": "    return false;\n}\n#define slow 1\n",
    }
    reqs = _programs(data_dir, "humanevalpack-cpp", 12, extra)
    shared, alone, cache = _both_ways(reqs, tmp_path)
    assert {k: r.verdict for k, r in shared.items()} == {k: r.verdict for k, r in alone.items()}
    # messages name the program's own file and lines, and no member namespace, either way
    assert {k: r.message for k, r in shared.items()} == {k: r.message for k, r in alone.items()}
    assert shared["compile-error"].verdict is Verdict.COMPILE_ERROR
    assert "main.cpp:" in shared["compile-error"].message and "undeclared" in shared["compile-error"].message
    failed = [r.message for k, r in shared.items() if k.endswith("#buggy") and r.verdict is Verdict.FAILED]
    assert failed and all(m.startswith("test.bin: main.cpp:") for m in failed), failed[:3]
    assert sum(r.verdict is Verdict.PASSED for r in shared.values()) == 12
    assert _members_built_together(cache, "cpp") >= 20


CPP_TESTS = "int main() {\n    assert(total({1, 2}) == 3);\n}\n"
CPP_TOTAL = "int total(std::vector<int> v) {\n    int s = 0;\n    for (int x : v) s += x;\n    return s;\n}\n"


def test_cpp_groups_standard_headers_in_any_order_and_keeps_other_orders():
    cpp = Cpp()
    group = cpp.shared_group
    first = group("#include <stdio.h>\n#include <vector>\nint f();\n" + TRAILER)
    assert first == group("#include<vector>\n#  include <stdio.h>\n#include <vector>\nint f();\n" + TRAILER)
    assert first != group("#include <stdio.h>\n#include <math.h>\n#include <vector>\nint f();\n" + TRAILER)
    # headers from outside the standard keep their order: nothing says any order is the same
    boost = ("#include <boost/any.hpp>", "#include <vector>")
    assert group("\n".join(boost) + "\nint f();\n" + TRAILER) != group(
        "\n".join(reversed(boost)) + "\nint f();\n" + TRAILER
    )


def test_cpp_shared_builds_declare_the_prebuilt_vector_instances_their_headers_declare():
    assert "int" in extern_vectors(("#include <vector>",))
    assert "std::string" not in extern_vectors(("#include <vector>",))
    assert "std::string" in extern_vectors(("#include <string>", "#include<vector>"))
    assert "std::string" in extern_vectors(("#include <bits/stdc++.h>",))
    assert extern_vectors(("#include <stdio.h>", "#include <string>")) == ()
    program = "#include <vector>\n#include <assert.h>\n" + CPP_TOTAL + CPP_TESTS + TRAILER
    text = Cpp().shared_source([program, program]).text.split("\n")
    assert INSTANCES_LINKED in text and "extern template class std::vector<int>;" in text
    plain = "#include <stdio.h>\nint one() { return 1; }\nint main() { return one() - 1; }\n" + TRAILER
    assert INSTANCES_LINKED not in Cpp().shared_source([plain, plain]).text


@pytest.mark.toolchain
def test_cpp_programs_with_reordered_headers_build_and_run_together(tmp_path):
    heads = ["#include <vector>\n#include <assert.h>\n", "#include<assert.h>\n#include<vector>\n"]
    wrong = CPP_TOTAL.replace("s += x", "s -= x")
    programs = {f"right{i}": head + CPP_TOTAL for i, head in enumerate(heads)} | {"wrong": heads[1] + wrong}
    reqs = [dataclasses.replace(_req(body + CPP_TESTS + TRAILER, "cpp"), key=k) for k, body in programs.items()]
    shared, alone, cache = _both_ways(reqs, tmp_path)
    assert {k: r.verdict for k, r in shared.items()} == {k: r.verdict for k, r in alone.items()}
    assert [shared[k].verdict for k in programs] == [Verdict.PASSED, Verdict.PASSED, Verdict.FAILED]
    # one g++ run, linked with the prebuilt std::vector<int> (its members were not compiled again)
    assert _members_built_together(cache, "cpp") == 3


class _RecordingExecutor(Executor):
    """Records, for each job sent, whether it is a shared build and what its worker still had."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.sends: list[tuple[bool, list[bool]]] = []

    def _send(self, w, job) -> None:
        self.sends.append((bool(job.members), [bool(j.members) for j in w.inflight.values()]))
        super()._send(w, job)


@pytest.mark.toolchain
def test_shared_builds_never_wait_behind_other_work_nor_hold_work_behind_them(tmp_path):
    # (a build queued behind a test that loops to its time limit waited for it, with its
    # programs, while the other worker ran dry)
    heads = ["#include <vector>\n#include <assert.h>\n", "#include <string>\n#include <vector>\n#include <assert.h>\n"]
    reqs = [
        _req(head + CPP_TOTAL.replace("s += x", f"s += x * {k} / {k}") + CPP_TESTS + TRAILER, "cpp")
        for head in heads
        for k in range(1, 9)
    ]
    with _RecordingExecutor(cache_dir=tmp_path, workers=2) as ex:
        results = list(ex.run(reqs))
    assert sum(r.verdict is Verdict.PASSED for r in results) == 16
    builds = [behind for shared, behind in ex.sends if shared]
    assert len(builds) == 2 and builds == [[], []]
    assert not any(True in behind for _, behind in ex.sends)
    # the runs themselves are still queued behind each other (no worker waits for the harness)
    assert any(behind for shared, behind in ex.sends if not shared)


def test_messages_name_the_programs_own_file_and_lines():
    shared = "thread 'slmbench_member_3::tests::t' panicked at /tmp/x/staging/shared.ab/main.rs:229:15:"
    assert program_relative(shared, "main.rs", 200) == "thread 'tests::t' panicked at main.rs:29:15:"
    alone = "test.bin: /tmp/y/staging/0d37.j6/main.cpp:45: int f(): Assertion `x' failed."
    assert program_relative(alone, "main.cpp", 0) == "test.bin: main.cpp:45: int f(): Assertion `x' failed."
    assert program_relative("Main.java:3: error", "main.cpp", 0) == "Main.java:3: error"


@pytest.mark.toolchain
def test_a_worker_that_ran_python_samples_still_finds_the_compilers(data_dir, tmp_path):
    # A Python sample installs its environment (HOME = its work dir, a safe PATH) in the
    # worker's process environment, which subprocesses inherit: rustup's rustc then found no
    # toolchain, and the failed builds were cached for good.
    rust = _programs(data_dir, "humanevalpack-rust", 2, {})
    python = ExecRequest(key="py", language="python", program="assert 1 + 1 == 2\n")
    with Executor(workers=1, cache_dir=tmp_path / "cache") as ex:
        assert [r.verdict for r in ex.run([python])] == [Verdict.PASSED]
        got = {r.key: r for r in ex.run(rust)}
    assert [got[k].verdict for k in ("Rust/0#canonical", "Rust/1#canonical")] == [Verdict.PASSED] * 2, [
        r.message for r in got.values()
    ]
    metas = [json.loads(p.read_text()) for p in (tmp_path / "cache" / "builds" / "rust").glob("*/*/build.json")]
    assert metas and all(m["ok"] for m in metas)


def test_a_failed_build_is_cached_only_when_the_compiler_names_the_program(tmp_path):
    cache = BuildCache(tmp_path)
    calls = []

    def failing(log: str):
        def build(src: Path, out: Path) -> BuildOutput:
            calls.append(log)
            return BuildOutput(False, log.splitlines()[0], 0.1, log=log)

        return build

    own = "error[E0308]: mismatched types\n --> /tmp/x/main.rs:3:5\n"
    machine = "error: rustup could not choose a version of rustc to run\n"
    for program, log in (("fn a() {}", own), ("fn b() {}", machine)):
        for _ in range(2):
            built = cache.get("rust", "main.rs", program, {}, failing(log))
            assert not built.output.ok
    assert calls == [own, machine, machine]  # the program's own error once; the machine's again
