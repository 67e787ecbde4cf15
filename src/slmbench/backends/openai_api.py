"""OpenAI-compatible HTTP servers (vLLM, llama.cpp, Ollama, TGI, ...): ``--model openai:<model name>``.

One request per sample (``n=1``) with a seed derived from (seed, problem, sample), so a sample
does not depend on which others are asked for; at most ``concurrency`` requests are in flight;
429 and 5xx answers and connection failures are retried with exponential backoff (honouring
``Retry-After``); other 4xx answers are the user's to fix and fail at once. Servers accept at
most 4 stop sequences, so the rest are applied here, exactly, on the returned text.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from slmbench.backends.base import Backend, BackendInfo, GenerationRequest
from slmbench.backends.chat import answer_completion, instruction
from slmbench.backends.hf import check_args, parse_bool, sample_seed
from slmbench.errors import UserError
from slmbench.spec import DecodingSpec
from slmbench.types import Completion, Usage

_KNOWN_ARGS = {
    "base_url": "server URL up to /v1 (default: $OPENAI_BASE_URL or http://127.0.0.1:8000/v1)",
    "api_key_env": "environment variable holding the API key (default OPENAI_API_KEY; unset: no key sent)",
    "concurrency": "requests in flight at once (default 4)",
    "max_retries": "retries of a request on 429/5xx/connection errors (default 5)",
    "backoff": "first retry delay in seconds, doubled each retry (default 1.0)",
    "timeout": "seconds per request (default 600)",
    "stream": "true: stream tokens and measure the time to first token (default false)",
    "endpoint": "completions | chat (default: chat with --chat, else completions)",
}
_RETRY_STATUS = {408, 409, 425, 429}  # and every 5xx
_MAX_SERVER_STOPS = 4


def server_url(args: Mapping[str, str]) -> str:
    """The server a run talks to: ``base_url`` from the model args, else $OPENAI_BASE_URL, else a
    local server on vLLM's default port."""
    return (args.get("base_url") or os.environ.get("OPENAI_BASE_URL") or "http://127.0.0.1:8000/v1").rstrip("/")


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OpenAIBackend(Backend):
    name = "openai"
    needs_target = True
    target_example = "MODEL_NAME_ON_THE_SERVER"

    def __init__(self, target: str, args: Mapping[str, str] | None = None, *, chat: bool = False) -> None:
        super().__init__(target, args, chat=chat)
        check_args("openai", self.args, _KNOWN_ARGS)
        a = self.args
        self.base_url = server_url(a)
        self.api_key_env = a.get("api_key_env", "OPENAI_API_KEY")
        try:
            self.concurrency = max(1, int(a.get("concurrency", "4")))
            self.max_retries = max(0, int(a.get("max_retries", "5")))
            self.backoff = float(a.get("backoff", "1.0"))
            self.timeout = float(a.get("timeout", "600"))
        except ValueError as exc:
            raise UserError(f"bad number in --model-args for openai: {exc}") from exc
        self.stream = parse_bool(a.get("stream", "false"), "stream")
        self.endpoint = a.get("endpoint", "chat" if chat else "completions")
        if self.endpoint not in {"chat", "completions"}:
            raise UserError(f"endpoint={self.endpoint!r} is not known", hint="use completions or chat")
        if self.endpoint == "chat":
            self.form = "program"
        self._events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._clock = _ShareClock()

    def info(self) -> BackendInfo:
        return BackendInfo(
            backend=self.name,
            model=self.target,
            device="remote",
            extra={"base_url": self.base_url, "endpoint": self.endpoint, "stream": self.stream},
        )

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events)

    # ---- HTTP ---------------------------------------------------------------------------
    def _client(self) -> Any:
        try:
            import httpx
        except ImportError as exc:
            raise UserError("the openai backend needs httpx", hint="pip install 'slmbench[api]'") from exc
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        return httpx.Client(
            headers=headers, timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 30.0)), limits=limits
        )

    def generate(self, requests: Sequence[GenerationRequest], decoding: DecodingSpec) -> Iterator[Completion]:
        jobs = [(r, s) for r in requests for s in r.samples]
        if not jobs:
            return
        self._clock = _ShareClock()
        with self._client() as client:
            pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="slmbench-http")
            try:
                # submit lazily: never more than `concurrency` requests queued or in flight
                pending: set[Future[Completion]] = set()
                it = iter(jobs)
                for request, sample in it:
                    pending.add(pool.submit(self._one, client, request, sample, decoding))
                    if len(pending) >= self.concurrency:
                        break
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield future.result()
                        nxt = next(it, None)
                        if nxt is not None:
                            pending.add(pool.submit(self._one, client, nxt[0], nxt[1], decoding))
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

    def _payload(self, request: GenerationRequest, sample: int, decoding: DecodingSpec) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "model": self.target,
            "max_tokens": decoding.max_new_tokens,
            "temperature": decoding.temperature,
            "top_p": decoding.top_p,
            "n": 1,
            "seed": sample_seed(decoding.seed, request.problem.problem_id, sample) & 0x7FFFFFFF,
        }
        if decoding.top_k:
            body["top_k"] = decoding.top_k  # not in OpenAI's API; vLLM, llama.cpp and TGI read it
        if self.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        if self.endpoint == "chat":
            content = instruction(request.prompt, request.problem.language)
            body["messages"] = [{"role": "user", "content": content}]
            return "/chat/completions", body
        body["prompt"] = request.prompt
        stops = [s for s in request.stop_sequences if s][:_MAX_SERVER_STOPS]
        if stops:
            body["stop"] = stops
        return "/completions", body

    def _one(self, client: Any, request: GenerationRequest, sample: int, decoding: DecodingSpec) -> Completion:
        path, body = self._payload(request, sample, decoding)
        attempt = 0
        first = time.perf_counter()
        compute = 0.0
        while True:
            t0 = time.perf_counter()
            v0 = self._clock.start()
            try:
                text, finish, usage, ttft = self._post(client, path, body, t0)
                break
            except _Retryable as exc:
                compute += self._clock.stop(v0)
                if attempt >= self.max_retries:
                    raise UserError(
                        f"{self.base_url}{path} still failing after {attempt + 1} attempts: {exc}",
                        hint="check the server, or raise max_retries/timeout in --model-args",
                    ) from None
                delay = exc.retry_after if exc.retry_after is not None else self.backoff * 2**attempt
                # a Retry-After below zero (a server's clock or bug) means "now"; jitter spreads retry storms
                delay = min(max(delay, 0.0), 60.0) * (1 + 0.1 * random.random())
                with self._lock:
                    self._events.append(
                        {
                            "event": "http_retry",
                            "problem_id": request.problem.problem_id,
                            "sample": sample,
                            "reason": str(exc),
                            "delay_s": round(delay, 3),
                        }
                    )
                time.sleep(delay)
                attempt += 1
            except BaseException:
                self._clock.stop(v0)
                raise
        compute += self._clock.stop(v0)
        end = time.perf_counter()
        latency = end - t0
        # requests are in flight together: their latencies overlap, so throughput divides by
        # each one's share of the time (see _ShareClock), as for the batched runtimes
        extra: dict[str, Any] = {"attempts": attempt + 1, "compute_s": compute}
        if attempt:
            # latency_s is the answered request's; this adds the failed ones and the back-off
            extra["total_s"] = end - first
        usage = Usage(
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            latency_s=latency,
            ttft_s=ttft,
            extra=extra,
        )
        return answer_completion(request, sample, text, usage, chat=self.endpoint == "chat", finish=finish)

    def _post(
        self, client: Any, path: str, body: dict[str, Any], t0: float
    ) -> tuple[str, str, dict[str, Any], float | None]:
        import httpx

        url = self.base_url + path
        try:
            if not self.stream:
                response = client.post(url, json=body)
                self._check(response)
                data = response.json()
                return (*_choice(data["choices"][0], self.endpoint), _usage(data.get("usage")), None)
            with client.stream("POST", url, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                self._check(response)
                return self._read_stream(response, t0)
        except httpx.TransportError as exc:  # connection refused/reset, timeouts
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
            # valid JSON of another shape (a list, a string, choices that are not objects) included
            raise UserError(f"{url} answered something that is not an OpenAI response: {exc}") from exc

    def _check(self, response: Any) -> None:
        status = response.status_code
        if status < 400:
            return
        detail = response.text[:200].replace("\n", " ")
        if status in _RETRY_STATUS or status >= 500:
            retry_after = response.headers.get("retry-after")
            try:
                wait_s = float(retry_after) if retry_after is not None else None
            except ValueError:
                wait_s = None
            raise _Retryable(f"HTTP {status}: {detail}", wait_s)
        hint = f"is ${self.api_key_env} set?" if status in {401, 403} else "check the model name and --model-args"
        raise UserError(f"{response.request.url} answered HTTP {status}: {detail}", hint=hint)

    def _read_stream(self, response: Any, t0: float) -> tuple[str, str, dict[str, Any], float | None]:
        parts: list[str] = []
        finish = "length"
        usage: dict[str, Any] = {}
        ttft = None
        events = 0
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            events += 1
            data = line[5:].strip()
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            if chunk.get("usage"):
                usage = _usage(chunk["usage"])
            for choice in chunk.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content") if self.endpoint == "chat" else choice.get("text")
                if piece is not None and not isinstance(piece, str):
                    raise ValueError(f"a text piece is {type(piece).__name__}, not a string")
                if piece:
                    if ttft is None:
                        ttft = time.perf_counter() - t0
                    parts.append(piece)
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
        if not events:
            # not a server-sent event stream: an empty answer here would be scored as a wrong one
            raise ValueError("no server-sent events in the streamed answer")
        return "".join(parts), finish, usage, ttft


class _ShareClock:
    """Each request's share of the wall time: every interval is split equally among the requests
    in flight during it (a processor-sharing clock). The shares of all requests add up to the time
    during which at least one was in flight, so tokens / sum of shares is the throughput the
    client saw, where a sum of overlapping latencies would understate it by up to the concurrency."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._virtual = 0.0  # seconds of one request's share since the start
        self._last = time.perf_counter()
        self._in_flight = 0

    def _advance(self) -> None:
        now = time.perf_counter()
        if self._in_flight:
            self._virtual += (now - self._last) / self._in_flight
        self._last = now

    def start(self) -> float:
        with self._lock:
            self._advance()
            self._in_flight += 1
            return self._virtual

    def stop(self, started: float) -> float:
        with self._lock:
            self._advance()
            self._in_flight -= 1
            return self._virtual - started


def _choice(choice: Mapping[str, Any], endpoint: str) -> tuple[str, str]:
    text = (choice.get("message") or {}).get("content") if endpoint == "chat" else choice.get("text")
    if text is not None and not isinstance(text, str):
        raise ValueError(f"the answer's text is {type(text).__name__}, not a string")
    return text or "", choice.get("finish_reason") or "length"


def _usage(usage: Any) -> dict[str, Any]:
    """The token counts a server reports; a malformed usage block counts as not reported."""
    if not isinstance(usage, Mapping):
        return {}
    return {k: v if isinstance(v, int) and not isinstance(v, bool) else None for k, v in usage.items()}
