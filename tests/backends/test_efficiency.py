"""Efficiency meters and the per-run summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from slmbench.backends.base import BackendInfo
from slmbench.metrics.efficiency import EfficiencyMeter, KernelPeakRSS, PeakRSSSampler, RaplMeter, summarize
from slmbench.types import Usage


def test_peak_rss_sampler_sees_a_transient_allocation() -> None:
    with PeakRSSSampler(interval_s=0.001) as quiet:
        pass
    with PeakRSSSampler(interval_s=0.001) as busy:
        block = bytearray(200 * 1024 * 1024)  # touched pages: resident
        import time

        time.sleep(0.05)
        del block
    assert quiet.peak is not None and busy.peak is not None
    assert busy.peak - quiet.peak > 150 * 1024 * 1024


@pytest.mark.skipif(not KernelPeakRSS.available(), reason="no /proc/self/status VmHWM (not Linux)")
def test_kernel_high_water_mark_resets_per_window() -> None:
    hwm = KernelPeakRSS()
    block = bytearray(200 * 1024 * 1024)
    high = hwm.peak()
    del block
    hwm.reset()
    low = hwm.peak()
    assert high is not None and low is not None
    if hwm.resettable:
        assert high - low > 150 * 1024 * 1024
    with EfficiencyMeter("cpu").run() as meter:
        before = meter.peak_memory_bytes()
        block = bytearray(100 * 1024 * 1024)
        after = meter.peak_memory_bytes()
        del block
    assert before is not None and after is not None and after - before > 80 * 1024 * 1024


def _zone(root: Path, name: str, energy: int, wrap: int) -> Path:
    zone = root / name
    zone.mkdir(parents=True)
    (zone / "energy_uj").write_text(f"{energy}\n")
    (zone / "max_energy_range_uj").write_text(f"{wrap}\n")
    return zone


def test_rapl_sums_packages_and_handles_wraparound(tmp_path: Path) -> None:
    a = _zone(tmp_path, "intel-rapl:0", 1_000_000, 10_000_000)
    b = _zone(tmp_path, "intel-rapl:1", 9_500_000, 10_000_000)
    _zone(tmp_path, "intel-rapl:0:0", 5, 10_000_000)  # a subzone (core) is part of package 0: not added
    meter = RaplMeter(tmp_path)
    assert meter.available
    start = meter.read_uj()
    (a / "energy_uj").write_text("3000000\n")  # +2 J
    (b / "energy_uj").write_text("500000\n")  # wrapped: +1 J
    assert meter.joules_between(start, meter.read_uj()) == pytest.approx(3.0)


def test_rapl_unreadable_means_not_measured(tmp_path: Path) -> None:
    meter = RaplMeter(tmp_path / "absent")
    assert not meter.available and meter.read_uj() is None and meter.joules_between(None, None) is None


def test_cpu_window_measures_time_and_memory() -> None:
    with EfficiencyMeter("cpu").window() as w:
        sum(range(100_000))
    r = w.result
    assert r is not None and r.wall_s > 0 and r.peak_memory_bytes is not None and r.peak_memory_bytes > 0
    assert (r.energy_j is None) == (not RaplMeter().available)


def test_summary_figures() -> None:
    usages = [
        Usage(prompt_tokens=10, completion_tokens=30, latency_s=1.0, ttft_s=0.1, peak_memory_bytes=100, energy_j=3.0),
        Usage(prompt_tokens=10, completion_tokens=10, latency_s=3.0, ttft_s=0.3, peak_memory_bytes=300, energy_j=1.0),
    ]
    info = BackendInfo("hf", "m", parameters=1234, load_time_s=2.5, device="cpu", dtype="float32")
    s = summarize(usages, info, problems=1)
    assert s["samples"] == 2 and s["prompt_tokens"] == 20 and s["completion_tokens"] == 40
    assert s["generation_time_s"] == 4.0 and s["tokens_per_s"] == 10.0
    assert s["mean_latency_s"] == 2.0 and s["p50_latency_s"] == 2.0 and s["p95_latency_s"] == pytest.approx(2.9)
    assert s["mean_ttft_s"] == pytest.approx(0.2) and s["peak_memory_bytes"] == 300
    assert s["energy_j"] == 4.0 and s["energy_per_sample_j"] == 2.0 and s["energy_per_token_j"] == 0.1
    assert s["energy_per_problem_j"] == 4.0
    assert (s["load_time_s"], s["parameters"], s["device"], s["dtype"]) == (2.5, 1234, "cpu", "float32")


def test_summary_reports_unmeasured_as_none_not_zero() -> None:
    usages = [Usage(completion_tokens=5, latency_s=1.0), Usage(completion_tokens=5, latency_s=None)]
    s = summarize(usages, None)
    # one latency missing: totals would understate the time, so they are not reported
    assert s["generation_time_s"] is None and s["tokens_per_s"] is None and s["mean_latency_s"] is None
    assert s["energy_j"] is None and s["energy_per_token_j"] is None and s["peak_memory_bytes"] is None
    assert s["prompt_tokens"] is None and s["completion_tokens"] == 10
    assert s["parameters"] is None and s["load_time_s"] is None


def test_throughput_divides_by_compute_shares_not_overlapping_latencies() -> None:
    # two samples decoded side by side for 2 s: each waited 2 s, the runtime computed for 2 s
    usages = [Usage(completion_tokens=10, latency_s=2.0, ttft_s=0.5, extra={"compute_s": 1.0}) for _ in range(2)]
    s = summarize(usages)
    assert s["generation_time_s"] == 2.0 and s["tokens_per_s"] == 10.0
    assert s["mean_latency_s"] == 2.0 and s["p95_latency_s"] == 2.0


def test_peak_memory_says_whether_it_is_vram_or_rss() -> None:
    usages = [Usage(completion_tokens=1, latency_s=1.0, peak_memory_bytes=100)]
    kind = {
        device: summarize(usages, BackendInfo("hf", "m", device=device))["peak_memory_kind"]
        for device in ("cpu", "cuda:0", "gpu", "remote")
    }
    # a CPU run's peak is the process's resident set, not a VRAM figure
    assert kind == {"cpu": "RSS", "cuda:0": "VRAM", "gpu": "VRAM", "remote": None}
    assert summarize([Usage(completion_tokens=1)], BackendInfo("hf", "m", device="cpu"))["peak_memory_kind"] is None
    assert summarize(usages, None)["peak_memory_kind"] is None
