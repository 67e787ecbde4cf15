"""Real servers on loopback for the HTTP backend tests, and a fault-injecting proxy."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_llama_server(gguf: Path, log: Path, timeout: float = 120.0) -> tuple[subprocess.Popen, str]:
    """``python -m llama_cpp.server`` serving ``gguf``; returns (process, base URL up to /v1)."""
    import httpx

    port = free_port()
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf), "--model_alias", "tiny",
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "512", "--n_threads", "1", "--verbose", "false",
    ]  # fmt: skip
    out = log.open("wb")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(base + "/models", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"llama_cpp.server did not answer within {timeout}s: {log.read_text()[-2000:]}")


class FaultProxy:
    """A loopback HTTP proxy in front of a real server that answers the first requests with
    injected errors (``faults``: a list of (status, headers)), delays each forwarded request,
    and counts how many requests are in flight at once."""

    def __init__(
        self, upstream: str, faults: list[tuple[int, dict[str, str]]] | None = None, delay_s: float = 0.0
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults = list(faults or [])
        self.delay_s = delay_s
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _handler(self) -> Callable:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                import httpx

                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with proxy.lock:
                    proxy.requests += 1
                    proxy.in_flight += 1
                    proxy.max_in_flight = max(proxy.max_in_flight, proxy.in_flight)
                    fault = proxy.faults.pop(0) if proxy.faults else None
                counted = True

                def answered() -> None:
                    # before the answer is written: once the client has it, it may send its next
                    # request, which must not find this one still counted as in flight
                    nonlocal counted
                    if counted:
                        with proxy.lock:
                            proxy.in_flight -= 1
                        counted = False

                try:
                    if fault is not None:
                        status, headers = fault
                        payload = b'{"error": "injected"}'
                        answered()
                        self.send_response(status)
                        for k, v in headers.items():
                            self.send_header(k, v)
                        self.send_header("Content-Length", str(len(payload)))
                        self.end_headers()
                        self.wfile.write(payload)
                        return
                    time.sleep(proxy.delay_s)
                    path = self.path.removeprefix("/v1")
                    r = httpx.post(
                        proxy.upstream + path, content=body, headers={"Content-Type": "application/json"}, timeout=120
                    )
                    answered()
                    self.send_response(r.status_code)
                    self.send_header("Content-Type", r.headers.get("content-type", "application/json"))
                    self.send_header("Content-Length", str(len(r.content)))
                    self.end_headers()
                    self.wfile.write(r.content)
                finally:
                    answered()

        return Handler

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
