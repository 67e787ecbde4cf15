"""Render a local HTML file in headless Chromium through the DevTools protocol (websocket-client).

Collects every console message, uncaught exception and browser log entry (failed resource loads,
blocked network requests), evaluates a script in the page and takes a full-page screenshot.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-port=0",
    "--window-size=1400,1000",
]


@dataclass
class PageReport:
    console: list[dict[str, Any]] = field(default_factory=list)  # Runtime.consoleAPICalled params
    exceptions: list[dict[str, Any]] = field(default_factory=list)  # Runtime.exceptionThrown params
    log: list[dict[str, Any]] = field(default_factory=list)  # Log.entryAdded entries
    evaluated: Any = None
    screenshot: bytes = b""

    @property
    def errors(self) -> list[str]:
        out = [
            f"console.{m['type']}: {m.get('args')}" for m in self.console if m["type"] in ("error", "warning", "assert")
        ]
        out += [f"exception: {e['exceptionDetails'].get('text')}" for e in self.exceptions]
        out += [
            f"log {e['level']}: {e.get('text')} {e.get('url', '')}"
            for e in self.log
            if e["level"] in ("error", "warning")
        ]
        return out


class _Session:
    def __init__(self, ws_url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=30)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for ev in self.events:
            if ev["method"] == method:
                return ev
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method:
                    return msg
        raise TimeoutError(method)

    def drain(self, seconds: float) -> None:
        """Collect the events that arrive within ``seconds`` (late console messages)."""
        import websocket

        self.ws.settimeout(seconds)
        try:
            while True:
                msg = json.loads(self.ws.recv())
                if "method" in msg:
                    self.events.append(msg)
        except websocket.WebSocketTimeoutException:
            pass
        finally:
            self.ws.settimeout(60)


def render(html: Path, user_data_dir: Path, script: str) -> PageReport:
    """Load ``html`` (file://), run ``script`` (an expression returning JSON-able data), screenshot."""
    proc = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = user_data_dir / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.is_file() and port_file.read_text().strip()):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = json.load(r)
        page = next(t for t in targets if t["type"] == "page")
        s = _Session(page["webSocketDebuggerUrl"])
        for domain in ("Runtime", "Log", "Page"):
            s.call(f"{domain}.enable")
        s.call("Page.navigate", url=html.resolve().as_uri())
        s.wait_for("Page.loadEventFired")
        s.drain(0.5)
        result = s.call("Runtime.evaluate", expression=script, returnByValue=True)
        shot = s.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        report = PageReport(
            console=[e["params"] for e in s.events if e["method"] == "Runtime.consoleAPICalled"],
            exceptions=[e["params"] for e in s.events if e["method"] == "Runtime.exceptionThrown"],
            log=[e["params"]["entry"] for e in s.events if e["method"] == "Log.entryAdded"],
            evaluated=result.get("result", {}).get("value"),
            screenshot=base64.b64decode(shot["data"]),
        )
        try:
            s.call("Browser.close")
        except Exception:  # the browser may close the socket before answering
            pass
        return report
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
