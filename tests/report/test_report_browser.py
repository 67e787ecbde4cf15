"""The report renders in headless Chromium (DevTools protocol): every table and plot is there and
visible, nothing is fetched from the network, and the console stays free of errors."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from tests.analysis.synthetic import synthetic_results
from tests.report.chromium import CHROMIUM, render

from slmbench.report.html import write_report

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]

INSPECT = """(() => {
  const vis = el => { const r = el.getBoundingClientRect(); return r.width > 10 && r.height > 10; };
  return {
    tables: [...document.querySelectorAll('table[data-table]')].map(t => (
      {name: t.dataset.table, rows: t.tBodies[0].rows.length, visible: vis(t)})),
    plots: [...document.querySelectorAll('svg[data-plot]')].map(s => (
      {name: s.dataset.plot, visible: vis(s), marks: s.querySelectorAll('path, rect, use, text').length})),
    resources: performance.getEntriesByType('resource').map(r => r.name),
    title: document.title,
  };
})()"""


@pytest.fixture(autouse=True)
def _need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)", pytrace=False)


def _pixels(png: bytes):
    import matplotlib.image

    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return matplotlib.image.imread(io.BytesIO(png), format="png")


def _check(files, tmp_path: Path, name: str) -> dict:
    page = render(files.html, tmp_path / f"profile-{name}", INSPECT)
    (files.folder / "screenshot.png").write_bytes(page.screenshot)
    assert page.errors == []
    seen = page.evaluated
    expected_tables = {p.stem for p in files.tables if p.suffix == ".csv"}
    assert {t["name"] for t in seen["tables"]} == expected_tables
    assert all(t["visible"] for t in seen["tables"]), seen["tables"]
    assert {p["name"] for p in seen["plots"]} == set(files.plots)
    assert all(p["visible"] and p["marks"] > 5 for p in seen["plots"]), seen["plots"]
    assert seen["resources"] == []  # self-contained: nothing loaded beside the file itself
    pixels = _pixels(page.screenshot)
    assert pixels.shape[0] > 1000 and pixels.shape[1] >= 1000  # the full page, not just the viewport
    assert pixels.std() > 0.05  # not a blank page
    return seen


def test_synthetic_report_renders_without_console_errors(tmp_path: Path) -> None:
    files = write_report(synthetic_results(with_missing=True), tmp_path / "out")
    seen = _check(files, tmp_path, "synthetic")
    assert "heatmap-languages" in {p["name"] for p in seen["plots"]}
    assert next(t for t in seen["tables"] if t["name"] == "ranking_humaneval")["rows"] == 6


def test_the_harness_does_see_console_errors(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text('<html><body><script>console.error("bad thing"); missingFunction();</script></body></html>')
    report = render(page, tmp_path / "profile", "document.title")
    assert any("bad thing" in e for e in report.errors)
    assert any("missingFunction" in str(e) for e in report.exceptions)


@pytest.mark.slow
@pytest.mark.model
def test_quickstart_study_report_in_chromium(tmp_path: Path) -> None:
    """The quickstart example end to end: build tiny models, run, report, render."""
    from slmbench.study import run_study

    for name in ("quickstart.toml", "make_tiny_model.py"):
        shutil.copy(REPO / "examples" / name, tmp_path / name)
    summary = run_study(tmp_path / "quickstart.toml", quiet=True)
    assert summary.loads == ["reference (canonical)", "tiny-qwen2", "tiny-gpt2", "tiny-llama"]  # each loaded once
    seen = _check(summary.report, tmp_path, "quickstart")
    ranking = next(t for t in seen["tables"] if t["name"] == "ranking_humaneval")
    assert ranking["rows"] == 4
    again = run_study(tmp_path / "quickstart.toml", quiet=True)
    assert again.loads == [] and again.generated == 0 and again.skipped == again.runs
