"""What an answer costs: memory, time and energy meters, and the per-run summary.

Every meter reports ``None`` when the machine cannot measure its quantity (no GPU, RAPL not
readable, ...): a missing figure is recorded as unavailable, never guessed or set to zero.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slmbench.backends.base import BackendInfo
from slmbench.types import Usage

_RAPL_ROOT = Path("/sys/class/powercap")


def _rss_bytes() -> int | None:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:
        return None


class PeakRSSSampler:
    """Peak resident memory of this process over a window, sampled by a background thread.

    ``ru_maxrss`` is a lifetime peak (it includes model loading and cannot be reset), so a
    window needs its own sampler. Used as a context manager; ``peak`` is None where RSS is not
    readable.
    """

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        rss = _rss_bytes()
        if rss is not None and (self.peak is None or rss > self.peak):
            self.peak = rss

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> PeakRSSSampler:
        self._sample()
        self._thread = threading.Thread(target=self._run, name="slmbench-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()


class KernelPeakRSS:
    """Peak RSS from the kernel's own high-water mark (Linux ``VmHWM``), reset per window by
    writing 5 to ``/proc/self/clear_refs``. Exact and free: no sampling thread competing with
    the model for the interpreter and the address-space lock (a 20 ms sampler cost ~25% of
    generation speed on a small CPU model)."""

    _STATUS = Path("/proc/self/status")
    _CLEAR = Path("/proc/self/clear_refs")

    def __init__(self) -> None:
        self.resettable = False

    @classmethod
    def available(cls) -> bool:
        return cls._read() is not None

    @classmethod
    def _read(cls) -> int | None:
        try:
            for line in cls._STATUS.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
        return None

    def reset(self) -> None:
        try:
            self._CLEAR.write_text("5")
            self.resettable = True
        except OSError:
            self.resettable = False  # then the peak is the process's lifetime peak

    def peak(self) -> int | None:
        return self._read()


class RaplMeter:
    """CPU package energy from the Linux powercap (RAPL) counters, where readable.

    The counters cover the whole package, so concurrent load of other processes is included:
    the figure is labelled with that scope wherever it is stored.
    """

    def __init__(self, root: Path = _RAPL_ROOT) -> None:
        self._zones: list[tuple[Path, int]] = []
        try:
            candidates = sorted(root.glob("intel-rapl:*")) + sorted(root.glob("amd-rapl:*"))
        except OSError:
            candidates = []
        for zone in candidates:
            if zone.name.count(":") != 1:  # top-level packages only; subzones are parts of them
                continue
            energy, max_range = zone / "energy_uj", zone / "max_energy_range_uj"
            try:
                energy.read_text()
                wrap = int(max_range.read_text())
            except (OSError, ValueError):
                continue
            self._zones.append((energy, wrap))

    @property
    def available(self) -> bool:
        return bool(self._zones)

    def read_uj(self) -> list[int] | None:
        if not self._zones:
            return None
        try:
            return [int(path.read_text()) for path, _ in self._zones]
        except (OSError, ValueError):
            return None

    def joules_between(self, start: list[int] | None, end: list[int] | None) -> float | None:
        if start is None or end is None:
            return None
        total = 0
        for (_, wrap), a, b in zip(self._zones, start, end, strict=True):
            total += b - a if b >= a else b + wrap - a  # the counter wraps at max_energy_range_uj
        return total / 1e6


class NvmlMeter:
    """GPU energy (total-energy counter, mJ) and used memory through NVML, where available."""

    def __init__(self, device_index: int = 0) -> None:
        self._handle: Any = None
        self._nvml: Any = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
            self._nvml = pynvml
        except Exception:
            self._handle = None

    @property
    def available(self) -> bool:
        return self._handle is not None

    def energy_mj(self) -> int | None:
        if self._handle is None:
            return None
        try:
            return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except Exception:  # older GPUs have no energy counter
            return None

    def used_memory_bytes(self) -> int | None:
        if self._handle is None:
            return None
        try:
            return int(self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used)
        except Exception:
            return None


@dataclass(frozen=True)
class WindowMeasurement:
    """What one window of work (e.g. a generation batch) cost as a whole."""

    wall_s: float
    peak_memory_bytes: int | None
    energy_j: float | None
    energy_source: str | None  # "nvml" | "rapl" | None
    gpu_memory_used_bytes: int | None = None


class EfficiencyMeter:
    """Measures windows of work on one device: peak memory, wall time and energy.

    ``device`` is a torch-style device string ("cpu", "cuda", "cuda:1"). On CUDA the peak is
    ``torch.cuda.max_memory_allocated`` (reset per window) and energy comes from NVML; on CPU the
    peak is the sampled RSS of this process and energy comes from RAPL where readable.
    """

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.cuda = device.startswith("cuda")
        index = int(device.split(":", 1)[1]) if self.cuda and ":" in device else 0
        self._cuda_index = index
        self._nvml = NvmlMeter(index) if self.cuda else None
        self._rapl = None if self.cuda else RaplMeter()

    def window(self) -> _Window:
        return _Window(self)

    def run(self) -> RunMeter:
        """A meter read continuously while work goes on (e.g. a continuous-batching loop)."""
        return RunMeter(self)


class RunMeter:
    """Cumulative energy and running peak memory since ``__enter__``, readable at any time."""

    def __init__(self, meter: EfficiencyMeter) -> None:
        self.meter = meter
        self._sampler: PeakRSSSampler | None = None
        self._hwm: KernelPeakRSS | None = None
        self._rapl0: list[int] | None = None
        self._nvml0: int | None = None

    @property
    def energy_source(self) -> str | None:
        m = self.meter
        if m.cuda:
            return "nvml" if self._nvml0 is not None else None
        return "rapl" if self._rapl0 is not None else None

    def __enter__(self) -> RunMeter:
        m = self.meter
        if m.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats(m._cuda_index)
            self._nvml0 = m._nvml.energy_mj() if m._nvml else None
        else:
            if KernelPeakRSS.available():
                self._hwm = KernelPeakRSS()
                self._hwm.reset()
            else:
                self._sampler = PeakRSSSampler(interval_s=0.02).__enter__()
            self._rapl0 = m._rapl.read_uj() if m._rapl else None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sampler is not None:
            self._sampler.__exit__(None, None, None)

    def energy_j(self) -> float | None:
        """Joules since the start, None where not measurable."""
        m = self.meter
        if m.cuda:
            e1 = m._nvml.energy_mj() if m._nvml and self._nvml0 is not None else None
            return (e1 - self._nvml0) / 1e3 if e1 is not None and self._nvml0 is not None else None
        if m._rapl is None or self._rapl0 is None:
            return None
        return m._rapl.joules_between(self._rapl0, m._rapl.read_uj())

    def peak_memory_bytes(self) -> int | None:
        m = self.meter
        if m.cuda:
            import torch

            return int(torch.cuda.max_memory_allocated(m._cuda_index))
        if self._hwm is not None:
            return self._hwm.peak()
        if self._sampler is None:
            return None
        self._sampler._sample()
        return self._sampler.peak

    def gpu_memory_used_bytes(self) -> int | None:
        return self.meter._nvml.used_memory_bytes() if self.meter._nvml else None


class _Window:
    def __init__(self, meter: EfficiencyMeter) -> None:
        self.meter = meter
        self.result: WindowMeasurement | None = None
        self._sampler: PeakRSSSampler | None = None

    def __enter__(self) -> _Window:
        m = self.meter
        if m.cuda:
            import torch

            torch.cuda.synchronize(m._cuda_index)
            torch.cuda.reset_peak_memory_stats(m._cuda_index)
            self._e0: Any = m._nvml.energy_mj() if m._nvml else None
        else:
            if KernelPeakRSS.available():
                self._hwm: KernelPeakRSS | None = KernelPeakRSS()
                self._hwm.reset()
            else:
                self._hwm = None
                self._sampler = PeakRSSSampler().__enter__()
            self._e0 = m._rapl.read_uj() if m._rapl else None
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        m = self.meter
        gpu_used = None
        if m.cuda:
            import torch

            torch.cuda.synchronize(m._cuda_index)
            wall = time.perf_counter() - self._t0
            peak = int(torch.cuda.max_memory_allocated(m._cuda_index))
            e1 = m._nvml.energy_mj() if m._nvml else None
            energy = (e1 - self._e0) / 1e3 if e1 is not None and self._e0 is not None else None
            source = "nvml" if energy is not None else None
            gpu_used = m._nvml.used_memory_bytes() if m._nvml else None
        else:
            wall = time.perf_counter() - self._t0
            e1 = m._rapl.read_uj() if m._rapl else None
            if self._hwm is not None:
                peak = self._hwm.peak()
            else:
                assert self._sampler is not None
                self._sampler.__exit__(None, None, None)
                peak = self._sampler.peak
            energy = m._rapl.joules_between(self._e0, e1) if m._rapl else None
            source = "rapl" if energy is not None else None
        self.result = WindowMeasurement(wall, peak, energy, source, gpu_used)


# ---- per-run summary -----------------------------------------------------------------------
def _total(values: list[float | int | None]) -> float | None:
    """Sum when every value was measured; None when any is missing (a partial sum would lie)."""
    if not values or any(v is None for v in values):
        return None
    return float(sum(v for v in values if v is not None))


def _percentile(sorted_values: list[float], q: float) -> float:
    i = (len(sorted_values) - 1) * q
    lo, hi = math.floor(i), math.ceil(i)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (i - lo)


def _compute_s(usage: Usage) -> float | None:
    """The sample's share of the backend's busy time. Backends that run samples concurrently
    (hf, vllm) record it as ``extra["compute_s"]``, because their latencies overlap and would add
    up to more than the time spent; for one-at-a-time backends the latency is that share."""
    value = usage.extra.get("compute_s")
    return float(value) if value is not None else usage.latency_s


def memory_kind(device: str | None) -> str | None:
    """What ``peak_memory_bytes`` is a peak of: GPU memory on a GPU, the resident set size of the
    process holding the model on a CPU (a CPU run has no VRAM; its figure is not one)."""
    if not device or device == "remote":
        return None
    return "RSS" if device.startswith("cpu") else "VRAM"


def summarize(
    usages: Iterable[Usage], info: BackendInfo | None = None, *, problems: int | None = None
) -> dict[str, Any]:
    """Per-run efficiency figures from the per-sample usages and the backend facts.

    Keys (None = not measured): samples, prompt_tokens, completion_tokens, generation_time_s
    (sum of per-sample compute shares, see ``_compute_s``), tokens_per_s (completion tokens /
    generation time), mean_latency_s, p50_latency_s, p95_latency_s (per-sample wall time from
    submission to last token), mean_ttft_s, peak_memory_bytes (max over
    samples), peak_memory_kind ("VRAM" or "RSS", from the device), energy_j, energy_per_sample_j, energy_per_token_j, energy_per_problem_j (needs
    ``problems``), load_time_s, parameters, device, dtype.
    """
    items = list(usages)
    latencies = [u.latency_s for u in items]
    measured_lat = sorted(x for x in latencies if x is not None)
    completion_tokens = _total([u.completion_tokens for u in items])
    prompt_tokens = _total([u.prompt_tokens for u in items])
    gen_time = _total([_compute_s(u) for u in items])
    ttfts = [u.ttft_s for u in items if u.ttft_s is not None]
    peaks = [u.peak_memory_bytes for u in items if u.peak_memory_bytes is not None]
    energy = _total([u.energy_j for u in items])
    n = len(items)
    return {
        "samples": n,
        "prompt_tokens": int(prompt_tokens) if prompt_tokens is not None else None,
        "completion_tokens": int(completion_tokens) if completion_tokens is not None else None,
        "generation_time_s": gen_time,
        "tokens_per_s": completion_tokens / gen_time if completion_tokens is not None and gen_time else None,
        "mean_latency_s": sum(measured_lat) / len(measured_lat) if measured_lat and len(measured_lat) == n else None,
        "p50_latency_s": _percentile(measured_lat, 0.5) if measured_lat and len(measured_lat) == n else None,
        "p95_latency_s": _percentile(measured_lat, 0.95) if measured_lat and len(measured_lat) == n else None,
        "mean_ttft_s": sum(ttfts) / len(ttfts) if ttfts else None,
        "peak_memory_bytes": max(peaks) if peaks else None,
        "peak_memory_kind": memory_kind(info.device if info else None) if peaks else None,
        "energy_j": energy,
        "energy_per_sample_j": energy / n if energy is not None and n else None,
        "energy_per_token_j": energy / completion_tokens if energy is not None and completion_tokens else None,
        "energy_per_problem_j": energy / problems if energy is not None and problems else None,
        "load_time_s": info.load_time_s if info else None,
        "parameters": info.parameters if info else None,
        "device": info.device if info else None,
        "dtype": info.dtype if info else None,
    }
