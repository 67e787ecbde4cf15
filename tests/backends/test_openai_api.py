"""The OpenAI-compatible backend against a real llama.cpp server process on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.backends.servers import FaultProxy, start_llama_server

from slmbench.backends.base import GenerationRequest
from slmbench.backends.openai_api import OpenAIBackend
from slmbench.errors import UserError
from slmbench.spec import DecodingSpec
from slmbench.tasks.base import truncate_at_stop
from slmbench.types import Problem

pytestmark = pytest.mark.model

PROMPT = "def add(a, b):\n"


def req(samples, stops=(), pid="p/0") -> GenerationRequest:
    return GenerationRequest(Problem("t", pid, PROMPT, entry_point="add"), PROMPT, tuple(samples), tuple(stops))


def gen(backend, requests, **decoding):
    return {(c.problem_id, c.sample): c for c in backend.generate(requests, DecodingSpec(**decoding))}


@pytest.fixture(scope="module")
def server(gguf_path: Path, tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("llama_cpp.server.app")  # llama-cpp-python[server]; CI installs it
    proc, base = start_llama_server(gguf_path, tmp_path_factory.mktemp("server") / "server.log")
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except Exception:
        proc.kill()


def test_completions_are_seeded_and_cut_at_stops(server: str) -> None:
    backend = OpenAIBackend("tiny", {"base_url": server, "concurrency": "2"})
    free = gen(backend, [req(range(4))], max_new_tokens=24, seed=11)
    again = gen(backend, [req(range(4))], max_new_tokens=24, seed=11)
    assert {k: v.text for k, v in free.items()} == {k: v.text for k, v in again.items()}
    texts = [c.text for c in free.values()]
    assert len(set(texts)) > 1
    stop = next(
        s
        for t in texts
        for s in (t[i : i + 2] for i in range(1, len(t) - 1))
        if s.strip() and not all(s in x for x in texts)
    )
    # more stops than the API's limit of 4: the fifth is applied on our side
    stops = ["\x00a", "\x00b", "\x00c", "\x00d", stop]
    cut = gen(backend, [req(range(4), stops)], max_new_tokens=24, seed=11)
    for key, c in cut.items():
        assert c.text == truncate_at_stop(free[key].text, [stop])
        assert c.finish_reason == ("stop" if stop in free[key].text else "length")
        u = c.usage
        assert u.prompt_tokens is not None and u.prompt_tokens > 3 and u.completion_tokens is not None
        assert u.latency_s is not None and u.latency_s > 0
        assert u.peak_memory_bytes is None and u.energy_j is None  # remote: not measurable here
    assert backend.info().device == "remote"


def test_streaming_measures_time_to_first_token(server: str) -> None:
    # concurrency 1: llama-cpp-python's server interrupts a streaming answer when another request arrives
    backend = OpenAIBackend("tiny", {"base_url": server, "stream": "true", "concurrency": "1"})
    plain = OpenAIBackend("tiny", {"base_url": server})
    streamed = gen(backend, [req(range(2))], max_new_tokens=12, seed=5)
    whole = gen(plain, [req(range(2))], max_new_tokens=12, seed=5)
    for key, c in streamed.items():
        assert c.text == whole[key].text
        assert c.usage.ttft_s is not None and 0 < c.usage.ttft_s <= c.usage.latency_s


def test_chat_endpoint_extracts_code(server: str) -> None:
    backend = OpenAIBackend("tiny", {"base_url": server}, chat=True)
    assert backend.form == "program" and backend.endpoint == "chat"
    (c,) = gen(backend, [req([0])], max_new_tokens=10).values()
    assert c.form in {"program", "continuation"}
    assert c.text.strip() in c.usage.extra["chat_answer"]
    assert c.usage.prompt_tokens is not None and c.usage.prompt_tokens > 40  # instruction inside the template


def test_retries_with_backoff_on_429_and_5xx(server: str) -> None:
    faults = [(429, {"Retry-After": "0"}), (503, {}), (500, {})]
    with FaultProxy(server, faults) as proxy:
        backend = OpenAIBackend("tiny", {"base_url": proxy.url, "concurrency": "1", "backoff": "0.05"})
        got = gen(backend, [req([0, 1])], max_new_tokens=8, seed=2)
    direct = gen(OpenAIBackend("tiny", {"base_url": server}), [req([0, 1])], max_new_tokens=8, seed=2)
    assert {k: v.text for k, v in got.items()} == {k: v.text for k, v in direct.items()}
    assert proxy.requests == 5  # 3 injected failures + 2 answered
    retries = [e for e in backend.events() if e["event"] == "http_retry"]
    assert [e["reason"].split(":")[0] for e in retries] == ["HTTP 429", "HTTP 503", "HTTP 500"]
    # Retry-After: 0 is honoured; the n-th retry otherwise waits backoff * 2**(n-1) (+ up to 10% jitter)
    assert retries[0]["delay_s"] == 0
    assert 0.1 <= retries[1]["delay_s"] <= 0.111 and 0.2 <= retries[2]["delay_s"] <= 0.221
    usage = got[("p/0", 0)].usage
    assert usage.extra["attempts"] == 4
    # the back-off alone was >= 0.3 s: the whole wait is kept beside the answered request's latency
    assert usage.extra["total_s"] >= usage.latency_s + 0.3
    assert "total_s" not in got[("p/0", 1)].usage.extra  # answered at once


def test_gives_up_after_max_retries_and_never_retries_4xx(server: str) -> None:
    with FaultProxy(server, [(502, {})] * 3) as proxy:
        backend = OpenAIBackend("tiny", {"base_url": proxy.url, "max_retries": "2", "backoff": "0.01"})
        with pytest.raises(UserError, match="after 3 attempts"):
            gen(backend, [req([0])], max_new_tokens=4)
    with FaultProxy(server, [(401, {})]) as proxy:
        backend = OpenAIBackend("tiny", {"base_url": proxy.url, "api_key_env": "SLMBENCH_TEST_KEY"})
        with pytest.raises(UserError, match=r"HTTP 401.*SLMBENCH_TEST_KEY"):
            gen(backend, [req([0])], max_new_tokens=4)
        assert proxy.requests == 1


def test_concurrency_is_bounded(server: str) -> None:
    with FaultProxy(server, delay_s=0.3) as proxy:
        backend = OpenAIBackend("tiny", {"base_url": proxy.url, "concurrency": "3"})
        out = gen(backend, [req(range(8))], max_new_tokens=2)
    assert len(out) == 8
    assert proxy.max_in_flight == 3  # the delay makes requests overlap; never more than the bound


def test_connection_refused_is_retried_then_reported() -> None:
    from tests.backends.servers import free_port

    backend = OpenAIBackend(
        "tiny", {"base_url": f"http://127.0.0.1:{free_port()}/v1", "max_retries": "1", "backoff": "0.01"}
    )
    with pytest.raises(UserError, match="ConnectError"):
        gen(backend, [req([0])], max_new_tokens=2)
    assert len(backend.events()) == 1


def test_bad_arguments() -> None:
    with pytest.raises(UserError, match="unknown --model-args"):
        OpenAIBackend("m", {"url": "x"})
    with pytest.raises(UserError, match="endpoint"):
        OpenAIBackend("m", {"endpoint": "embeddings"})


class _Garbage:
    """A loopback HTTP server answering every POST with one fixed (status, headers, body)."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None, delay_s: float = 0.0) -> None:
        import threading
        import time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        answer = (status, headers or {}, body)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(delay_s)
                status, headers, body = answer
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("stream", ["false", "true"])
@pytest.mark.parametrize(
    "body",
    [b"[]", b'"hello"', b'{"choices": "x"}', b'{"choices": [null]}', b'{"choices": [{"text": 5}]}', b"<html>"],
)
def test_a_server_answering_garbage_is_a_user_error_not_an_empty_answer(body: bytes, stream: str) -> None:
    with _Garbage(200, body) as url:
        backend = OpenAIBackend("tiny", {"base_url": url, "max_retries": "0", "stream": stream})
        with pytest.raises(UserError, match="not an OpenAI response"):
            gen(backend, [req([0])], max_new_tokens=2)


def test_malformed_usage_counts_as_not_reported() -> None:
    with _Garbage(200, b'{"choices": [{"text": "  return a + b\\n"}], "usage": "lots"}') as url:
        out = gen(OpenAIBackend("tiny", {"base_url": url}), [req([0])], max_new_tokens=2)
    c = out[("p/0", 0)]
    assert c.text == "  return a + b\n" and c.usage.completion_tokens is None


def test_negative_retry_after_retries_at_once() -> None:
    with _Garbage(429, b"slow down", {"Retry-After": "-5"}) as url:
        backend = OpenAIBackend("tiny", {"base_url": url, "max_retries": "2", "backoff": "0.01"})
        with pytest.raises(UserError, match="still failing after 3 attempts"):
            gen(backend, [req([0])], max_new_tokens=2)
    assert [e["delay_s"] for e in backend.events()] == [0.0, 0.0]


def test_throughput_counts_concurrent_requests_once() -> None:
    import time

    from slmbench.metrics.efficiency import summarize

    body = b'{"choices": [{"text": "  return a + b\\n"}], "usage": {"prompt_tokens": 5, "completion_tokens": 10}}'
    with _Garbage(200, body, delay_s=0.4) as url:
        backend = OpenAIBackend("tiny", {"base_url": url, "concurrency": "4"})
        t0 = time.perf_counter()
        out = gen(backend, [req(range(8))], max_new_tokens=10)
        wall = time.perf_counter() - t0
    usages = [c.usage for c in out.values()]
    assert sum(u.latency_s for u in usages) > 2.5 * wall  # four at a time: latencies overlap
    s = summarize(usages)
    # the time the client waited on the server, counted once: 80 tokens in ~0.8 s, not in ~3.2 s
    assert 0.7 * wall <= s["generation_time_s"] <= wall
    assert s["tokens_per_s"] == pytest.approx(80 / s["generation_time_s"])


def test_the_server_is_part_of_a_runs_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    # one model name served by two servers may be two models: their samples must not share a run
    from slmbench.pipeline import resolve_spec
    from slmbench.spec import RunSpec

    spec = RunSpec(model="openai:coder", task="humaneval")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://gpu-a:8000/v1/")
    on_a = resolve_spec(spec)
    assert on_a.model_args["base_url"] == "http://gpu-a:8000/v1"
    assert OpenAIBackend("coder", on_a.model_args).base_url == OpenAIBackend("coder").base_url
    monkeypatch.setenv("OPENAI_BASE_URL", "http://gpu-b:8000/v1")
    assert resolve_spec(spec).run_id() != on_a.run_id()
    # named in the model args, the environment does not matter
    named = RunSpec(model="openai:coder", task="humaneval", model_args={"base_url": "http://gpu-a:8000/v1"})
    assert resolve_spec(named) == named and named.run_id() == on_a.run_id()
