from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from tests.analysis.synthetic import BENCHMARKS, synthetic_results

from slmbench.analysis import tables
from slmbench.report.html import write_report
from slmbench.report.latex import escape, table_to_latex


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: list[str] = []
        self.plots: list[str] = []
        self.external: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("data-table"):
            self.tables.append(a["data-table"] or "")
        if tag == "svg" and a.get("data-plot"):
            self.plots.append(a["data-plot"] or "")
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            v = a.get(key)
            if v and not v.startswith(("#", "data:")):
                self.external.append(v)


def test_report_writes_every_table_plot_and_format(tmp_path: Path) -> None:
    res = synthetic_results(with_missing=True)
    files = write_report(res, tmp_path / "out", store="study.db")
    html = files.html.read_text()
    parser = _Collector()
    parser.feed(html)
    expected_tables = {f"ranking_{b.replace('-', '_')}" for b in BENCHMARKS} | {
        "stability",
        "efficiency",
        "efficiency_by_benchmark",
        "pareto",
        "multilingual",
        "anova",
        "tukey",
        "paired",
        "models",
    }
    assert set(parser.tables) == expected_tables
    assert set(parser.plots) == {f"bars-{b}" for b in BENCHMARKS} | {"heatmap-languages", "pareto"}
    assert parser.external == [] and parser.scripts == 0  # self-contained: nothing to fetch
    # SVG ids are unique across the page (each figure's ids are prefixed)
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    assert "big-b on mbpp" in html  # the missing pair is named
    assert "not measured" in html
    for name in expected_tables:
        assert (tmp_path / "out" / "tables" / f"{name}.csv").is_file()
        assert json.loads((tmp_path / "out" / "tables" / f"{name}.json").read_text())["name"] == name
        assert (tmp_path / "out" / "latex" / f"{name}.tex").is_file()
    summary = json.loads(files.summary.read_text())
    assert summary["missing"] == [["big-b", "mbpp"]] and summary["cost_statement"].endswith(".")


def test_latex_escapes_and_uses_booktabs() -> None:
    assert escape("pass@1 (%) a_b & c²") == r"pass@1 (\%) a\_b \& c$^2$"
    # the default size-group labels: with LaTeX's default font encoding a bare < prints as ¡
    assert escape("Group 1 (< 2.0B)") == r"Group 1 (\textless{} 2.0B)"
    assert escape(">= 6.0B") == r"\textgreater{}= 6.0B"
    res = synthetic_results()
    tex = table_to_latex(tables.stability_table(res))
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"\label{tab:stability}" in tex
    body = tex.split(r"\midrule")[1].split(r"\bottomrule")[0]
    assert body.count(r"\\") == len(res.models)
    # each note on its own line, not run together into one sentence
    notes = tex.split(r"\footnotesize ")[1].split(r"\end{table}")[0]
    assert notes.count(r" \\ ") == len(tables.stability_table(res).notes) - 1


def test_a_table_this_report_does_not_write_is_removed_not_left_stale(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_report(synthetic_results(), out)
    mine = out / "tables" / "notes.csv"
    mine.write_text("a user's own file\n")
    res = synthetic_results()
    fewer = type(res)(
        **{
            **res.__dict__,
            "benchmarks": ("humaneval", "mbpp"),
            "pairs": tuple(p for p in res.pairs if p.task != "humanevalpack-cpp"),
        }
    )
    write_report(fewer, out)
    assert not (out / "tables" / "ranking_humanevalpack_cpp.csv").exists()
    assert not (out / "tables" / "ranking_humanevalpack_cpp.json").exists()
    assert not (out / "latex" / "ranking_humanevalpack_cpp.tex").exists()
    assert (out / "tables" / "ranking_mbpp.csv").is_file() and mine.is_file()
    assert "ranking_humanevalpack_cpp" not in (out / "latex" / "all_tables.tex").read_text()
