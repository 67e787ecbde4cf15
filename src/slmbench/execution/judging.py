"""From what the monitor saw of a sample (sandbox.Observation) to the result record a worker
sends back: verdict, first failure message, exit code, CPU and wall time, captured output."""

from __future__ import annotations

import signal
from typing import Any

from slmbench.execution import inline, sandbox
from slmbench.execution.languages.base import Language, Outcome, first_error_line
from slmbench.types import ExecLimits, Verdict


def _timed_out(obs: sandbox.Observation, limits: ExecLimits) -> bool:
    # CPU time, not wall time, decides: a loaded machine slows a program down but does not
    # make it use more CPU. The wall clock only stops sleepers (see Child.wait).
    return obs.wall_killed or obs.cpu_killed or obs.signal == signal.SIGXCPU or obs.cpu_s > limits.timeout_s


def _timeout_message(obs: sandbox.Observation, limits: ExecLimits) -> str:
    if obs.cpu_killed:
        return f"timed out: its processes used more than {limits.timeout_s:g} s CPU time together"
    if obs.wall_killed and obs.cpu_s < limits.timeout_s:
        return f"timed out: still running after {obs.wall_s:.1f} s wall time ({obs.cpu_s:.2f} s CPU)"
    return f"timed out: more than {limits.timeout_s:g} s CPU time"


def judge_inline(obs: sandbox.Observation, token: str, limits: ExecLimits) -> dict[str, Any]:
    common = observed_fields(obs)
    if _timed_out(obs, limits):
        return result_record(Verdict.TIMEOUT, _timeout_message(obs, limits), **common)
    record = obs.result
    if obs.exit_code == 0 and record == inline.PASSED + token.encode():
        return result_record(Verdict.PASSED, "", **common)
    kind, text = record[:1], record[1:].decode(errors="replace")
    if kind == inline.SYNTAX:
        return result_record(Verdict.ERROR, text, **common)
    if kind in (inline.EXCEPTION, inline.EXITED) and obs.exit_code == 1:
        return result_record(Verdict.FAILED, text, **common)
    if obs.signal is not None:
        return result_record(Verdict.ERROR, f"killed by {_signame(obs.signal)}", **common)
    if obs.exit_code == 125:
        return result_record(Verdict.ERROR, first_error_line(obs.stderr.decode(errors="replace")), **common)
    if obs.exit_code == 0:
        return result_record(Verdict.FAILED, "exited before the tests finished (exit code 0)", **common)
    return result_record(Verdict.FAILED, f"exited before the tests finished (exit code {obs.exit_code})", **common)


def judge_outcome(lang: Language, obs: sandbox.Observation, token: str, limits: ExecLimits) -> dict[str, Any]:
    common = observed_fields(obs)
    timed_out = _timed_out(obs, limits)
    outcome = Outcome(
        exit_code=obs.exit_code,
        stdout=common["stdout"],
        stderr=common["stderr"],
        timed_out=timed_out,
        token_seen=token.encode() in obs.result,
    )
    verdict, message = lang.judge(outcome)
    if timed_out and verdict is Verdict.TIMEOUT:
        message = _timeout_message(obs, limits)
    elif verdict is Verdict.PASSED and not (outcome.token_seen and obs.exit_code == 0):
        # A Language may not pass what the harness did not see complete.
        verdict, message = Verdict.FAILED, "exited before the tests finished"
    elif obs.signal is not None and verdict is not Verdict.PASSED and not message:
        message = f"killed by {_signame(obs.signal)}"
    return result_record(verdict, message, **common)


def observed_fields(obs: sandbox.Observation) -> dict[str, Any]:
    return {
        "exit_code": obs.exit_code,
        "cpu_s": round(obs.cpu_s, 6),
        "wall_s": round(obs.wall_s, 6),
        "stdout": obs.stdout.decode(errors="replace"),
        "stderr": obs.stderr.decode(errors="replace"),
    }


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def result_record(verdict: Verdict, message: str, **fields: Any) -> dict[str, Any]:
    return {"verdict": verdict.value, "message": message, **fields}
