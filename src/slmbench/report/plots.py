"""The report's figures as inline SVG (matplotlib, no pyplot state, no network).

Every figure is returned as an ``<svg>`` string whose internal ids are prefixed with the figure's
name, so several figures can sit in one HTML page without their clip paths colliding.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence

from slmbench.analysis.results import StudyResults
from slmbench.analysis.tables import ParetoData, format_params

_PALETTE = ("#3b6ea5", "#e07b39", "#4f9d69", "#c44e52", "#8172b2", "#937860", "#da8bc3", "#8c8c8c", "#ccb974")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def to_svg(fig, name: str) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": name}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    prefix = re.sub(r"[^A-Za-z0-9_-]", "_", name) + "-"
    text = re.sub(r'id="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m.group(1)})", text)
    text = re.sub(r'xlink:href="#([^"]+)"', lambda m: f'xlink:href="#{prefix}{m.group(1)}"', text)
    return text.replace("<svg ", f'<svg class="plot" data-plot="{name}" role="img" ', 1)


def ranking_bars(results: StudyResults, bench: str, metric: str = "pass@1") -> str | None:
    """Horizontal bars of ``metric`` per model on one benchmark, with 95% CI whiskers."""
    rows = []
    for m in results.models:
        p = results.pair(m.name, bench)
        s = p.scores.get(metric) if p else None
        if s is not None:
            rows.append((m.name, s.value, s.ci_low, s.ci_high))
    if not rows:
        return None
    rows.sort(key=lambda r: r[1])
    scale = 100.0 if metric.startswith(("pass@", "beyond@")) else 1.0
    fig = _figure(7.0, 0.9 + 0.32 * len(rows))
    ax = fig.add_subplot()
    ys = range(len(rows))
    values = [r[1] * scale for r in rows]
    lows = [(r[1] - r[2]) * scale if r[2] is not None else 0 for r in rows]
    highs = [(r[3] - r[1]) * scale if r[3] is not None else 0 for r in rows]
    ax.barh(list(ys), values, color=_PALETTE[0], xerr=[lows, highs], capsize=3, ecolor="#333")
    ax.set_yticks(list(ys), [r[0] for r in rows])
    ax.set_xlabel(f"{metric} ({'%' if scale == 100 else 'score'}) with 95% CI")
    ax.set_title(f"{bench}: {metric}")
    if scale == 100:
        ax.set_xlim(0, 100)
    ax.grid(axis="x", alpha=0.3)
    return to_svg(fig, f"bars-{bench}")


def language_heatmap(results: StudyResults) -> str | None:
    """Model x language matrix of pass@1 (%), missing cells left blank."""
    langs = [(b, lang) for b, lang in results.languages.items() if b in results.benchmarks]
    models = [m.name for m in results.models if any(results.pair(m.name, b) for b, _ in langs)]
    if not langs or not models:
        return None
    import numpy as np

    grid = np.full((len(models), len(langs)), np.nan)
    for i, model in enumerate(models):
        for j, (bench, _) in enumerate(langs):
            p = results.pair(model, bench)
            v = p.value("pass@1") if p else None
            if v is not None:
                grid[i, j] = 100 * v
    fig = _figure(1.6 + 1.0 * len(langs), 1.0 + 0.4 * len(models))
    ax = fig.add_subplot()
    masked = np.ma.masked_invalid(grid)
    im = ax.imshow(masked, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(langs)), [lang for _, lang in langs], rotation=30, ha="right")
    ax.set_yticks(range(len(models)), models)
    for i in range(len(models)):
        for j in range(len(langs)):
            if not math.isnan(grid[i, j]):
                ax.text(
                    j,
                    i,
                    f"{grid[i, j]:.1f}",
                    ha="center",
                    va="center",
                    color="white" if grid[i, j] < 60 else "black",
                    fontsize=8,
                )
    fig.colorbar(im, ax=ax, label="pass@1 (%)")
    ax.set_title("pass@1 per language")
    return to_svg(fig, "heatmap-languages")


def pareto_scatter(data: ParetoData) -> str | None:
    if not data.points:
        return None
    fig = _figure(7.0, 4.2)
    ax = fig.add_subplot()
    on = {p.name for p in data.frontier}
    for k, p in enumerate(data.points):
        color = _PALETTE[3] if p.name in on else _PALETTE[0]
        ax.scatter([p.cost], [100 * p.value], color=color, zorder=3)
        ax.annotate(
            p.name, (p.cost, 100 * p.value), textcoords="offset points", xytext=(5, 4 + (k % 2) * 6), fontsize=8
        )
    front = sorted(data.frontier, key=lambda p: p.cost)
    if len(front) >= 2:
        ax.step([p.cost for p in front], [100 * p.value for p in front], where="post", color=_PALETTE[3], alpha=0.6)
    if min(p.cost for p in data.points) > 0:
        ax.set_xscale("log")
    ticks = sorted({p.cost for p in data.points})
    if data.cost_label == "peak memory":
        ax.set_xlabel("peak memory (log scale)")
        ax.set_xticks(ticks, [f"{t / 1e9:.2g} GB" for t in ticks], rotation=30)
    else:
        ax.set_xlabel("parameters (log scale)")
        ax.set_xticks(ticks, [format_params(t) for t in ticks], rotation=30)
    ax.minorticks_off()
    ax.set_ylim(0, max(5.0, min(100.0, 110 * max(p.value for p in data.points))))
    ax.set_ylabel(f"pass@1 on {data.benchmark} (%)")
    ax.set_title("Accuracy / cost (red: Pareto frontier)")
    ax.grid(alpha=0.3)
    return to_svg(fig, "pareto")


def all_plots(results: StudyResults, pareto: ParetoData, benchmarks: Sequence[str] | None = None) -> dict[str, str]:
    """name -> svg for every figure the data allow."""
    plots: dict[str, str] = {}
    for bench in benchmarks if benchmarks is not None else results.benchmarks:
        pairs = [results.pair(m.name, bench) for m in results.models]
        metric = next((p.headline for p in pairs if p is not None and p.headline), None)
        if metric:
            svg = ranking_bars(results, bench, metric)
            if svg:
                plots[f"bars-{bench}"] = svg
    heat = language_heatmap(results)
    if heat:
        plots["heatmap-languages"] = heat
    scatter = pareto_scatter(pareto)
    if scatter:
        plots["pareto"] = scatter
    return plots
