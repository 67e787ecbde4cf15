"""The study report: one self-contained HTML file (inline CSS and SVG, no script, no network),
plus CSV/JSON of every table, LaTeX tables and a JSON summary, all in the study's output folder."""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from slmbench.analysis.results import StudyResults
from slmbench.analysis.tables import (
    NOT_MEASURED,
    ParetoData,
    StatsBundle,
    Table,
    all_tables,
    compute_stats,
    pareto_data,
    tables_by_name,
    write_tables,
)
from slmbench.report.latex import write_latex
from slmbench.report.plots import all_plots


@dataclass(frozen=True)
class ReportFiles:
    folder: Path
    html: Path
    summary: Path
    tables: list[Path]
    latex: list[Path]
    plots: list[str]  # names of the figures embedded in the HTML


def _template():
    import jinja2

    text = resources.files("slmbench.report").joinpath("templates/report.html.j2").read_text(encoding="utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=False)
    return env.from_string(text)


def render_html(
    results: StudyResults,
    tables: list[Table],
    plots: dict[str, str],
    pareto: ParetoData,
    *,
    store: str = "",
    generated: str | None = None,
) -> str:
    from markupsafe import Markup

    from slmbench import __version__

    by_name = dict(tables_by_name(tables))
    ranking = [(t, "bars-" + t.title.removeprefix("Ranking on ")) for t in tables if t.section == "ranking"]
    env_lines = _environment_lines(results.environment)
    return _template().render(
        results=results,
        tables=by_name,
        ranking=ranking,
        models_table=by_name["models"],
        plots={k: Markup(v) for k, v in plots.items()},
        pareto=pareto,
        store=store,
        generated=generated or _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        not_measured=NOT_MEASURED,
        environment=env_lines,
    )


def _environment_lines(env: Any) -> dict[str, str]:
    if not isinstance(env, dict):
        return {}
    out = {}
    packages = env.get("packages")
    if isinstance(packages, dict):
        out["packages"] = ", ".join(f"{k} {v}" for k, v in sorted(packages.items()))
    machine = env.get("machine")
    if isinstance(machine, dict):
        out["machine"] = ", ".join(f"{k}: {machine[k]}" for k in ("cpu", "cpu_count", "system") if k in machine)
    return out


def write_report(
    results: StudyResults,
    output: Path,
    *,
    store: str = "",
    correction: str = "holm",
    seed: int = 0,
    bootstrap: int = 2000,
) -> ReportFiles:
    """Compute the statistics and write every output of the study's report into ``output``
    (``bootstrap``: resamples of the paired comparisons' CIs)."""
    output.mkdir(parents=True, exist_ok=True)
    bundle: StatsBundle = compute_stats(results, correction=correction, seed=seed, bootstrap=bootstrap)
    pareto = pareto_data(results)
    tables = all_tables(results, bundle, pareto, correction=correction)
    plots = all_plots(results, pareto)
    table_files = write_tables(tables, output / "tables")
    latex_files = write_latex(tables, output / "latex")
    _remove_stale(output, [*table_files, *latex_files])
    html = output / "report.html"
    html.write_text(render_html(results, tables, plots, pareto, store=store), encoding="utf-8")
    summary = output / "summary.json"
    summary.write_text(
        json.dumps(
            {
                "study": results.name,
                "models": [asdict(m) for m in results.models],
                "benchmarks": list(results.benchmarks),
                "missing": [list(m) for m in results.missing],
                "cost_statement": pareto.statement.text,
                "notes": list(results.notes),
                "tables": {t.name: t.to_json() for t in tables},
                "plots": sorted(plots),
            },
            indent=1,
            default=str,
        ),
        encoding="utf-8",
    )
    return ReportFiles(output, html, summary, table_files, latex_files, sorted(plots))


_FIXED_TABLES = frozenset(
    (
        "stability",
        "efficiency",
        "efficiency_by_benchmark",
        "pareto",
        "multilingual",
        "anova",
        "tukey",
        "paired",
        "models",
    )
)


def _remove_stale(output: Path, written: list[Path]) -> None:
    """Remove table files an earlier report wrote that this one did not (a benchmark no model ran
    any more, no language comparison): left behind, they would pass for current figures."""
    keep = set(written)
    for folder, suffixes in ((output / "tables", (".csv", ".json")), (output / "latex", (".tex",))):
        for path in folder.glob("*"):
            ours = path.stem in _FIXED_TABLES or path.stem.startswith("ranking_")
            if ours and path.suffix in suffixes and path not in keep:
                path.unlink()
