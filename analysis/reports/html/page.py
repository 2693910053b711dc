"""The frame of every report.html: one self-contained page (no network, opens from disk) made of a JSON
description of its sections and the scripts that draw it, inlined: Chart.js with its zoom plugin and Hammer
(assets/, from npm; versions in assets/README.md) and tracer's own assets/report.js. Sections are HTML, rows of
charts (log or linear axes, points with a hover per point, lines, stacked bars) and sortable, filterable tables.

Building the page is writing JSON: the drawing happens in the browser. (With Bokeh, the page's models took 0.9 s
to build and serialise for a 2 MB trace, more than the parse and the analysis together.)"""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

ASSETS = Path(__file__).with_name("assets")
# how report.js's charts are explored, for the pages' notes
ZOOM_NOTE = ("Hover a point; drag to pan, wheel or shift-drag to zoom, double-click to reset; click a legend entry "
             "to hide it.")
SCRIPTS = ("chart.umd.min.js", "hammer.min.js", "chartjs-plugin-zoom.min.js")   # in this order: each needs the last
CSS = """
body { font-family: system-ui, sans-serif; font-size: 13px; margin: 10px 16px; }
h1 { font-size: 20px; margin: 4px 0; } h2 { font-size: 16px; margin: 14px 0 4px; }
p.headline { max-width: 1200px; line-height: 1.45; }
.notice { color: #8a4b00; } .small { color: #555; font-size: 12px; }
table.topic { border-collapse: collapse; margin: 2px 0 10px; font-size: 12px; }
table.topic th, table.topic td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
table.topic th { background: #f4f4f4; } table.topic td:first-child, table.topic th:first-child { text-align: left; }
.charts { display: flex; flex-wrap: wrap; gap: 8px 18px; align-items: flex-start; }
.tools button { font-size: 11px; margin-right: 4px; }
.table { margin: 4px 0 12px; } .controls { margin: 4px 0; } .controls label { margin-right: 12px; }
.scroll { overflow: auto; max-width: 1250px; border: 1px solid #ddd; }
table.rows { border-collapse: collapse; font-size: 12px; }
table.rows th { position: sticky; top: 0; background: #f4f4f4; cursor: pointer; padding: 3px 6px; text-align: left; }
table.rows td { padding: 2px 6px; border-top: 1px solid #eee; white-space: nowrap; max-width: 420px;
                overflow: hidden; text-overflow: ellipsis; }
table.rows td.num { text-align: right; }
"""


def page_html(title: str, sections: list[dict]) -> str:
    """The page: `sections` (html_section, charts_section, table_section) drawn by assets/report.js."""
    # "</" escaped so that no text in the data can close the script element
    data = orjson.dumps({"sections": sections}, option=orjson.OPT_SERIALIZE_NUMPY).replace(b"</", b"<\\/").decode()
    scripts = "".join(f"<script>{(ASSETS / name).read_text()}</script>\n" for name in SCRIPTS)
    return (f"<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n<title>{html.escape(title)}</title>\n"
            f"<style>{CSS}</style>\n{scripts}</head>\n<body>\n<div id='tracer-report'></div>\n"
            f"<script type='application/json' id='tracer-page'>{data}</script>\n"
            f"<script>{(ASSETS / 'report.js').read_text()}</script>\n</body>\n</html>\n")


def html_section(text: str) -> dict:
    return {"kind": "html", "html": text}


def charts_section(charts: list[dict]) -> dict:
    """Charts side by side, wrapping to the next line where the window is narrow."""
    return {"kind": "charts", "charts": charts}


def chart(title: str, datasets: list[dict], x: dict, y: dict, width: int, height: int, *, hover=(),
          hover_title: str = "", legend: str = "top", zoom: str = "xy") -> dict:
    """A scatter chart (points and lines): `datasets` from points/line, axes {"label", "log", "min", "max",
    "ticks"}; `hover`: (name, template) lines shown for a point, the template's {field:format} filled from the
    point's row (formats: text, int, f<digits>, si, bytes); `hover_title` likewise."""
    return {"type": "scatter", "title": title, "datasets": datasets, "x": x, "y": y, "width": width,
            "height": height, "hover": [list(h) for h in hover], "hover_title": hover_title, "legend": legend,
            "zoom": zoom}


def points(label: str, x, y, color: str, *, rows: pd.DataFrame | None = None, radius=4.0, marker="circle",
           fill=None, edge=None, edge_width: float = 1.0, line: bool = False, dash=()) -> dict:
    """Points at (x, y), with a hover from `rows` (one row per point) when given; radius, marker (Chart.js point
    styles), fill and edge colours one value or one per point; `line`: joined in order (a None y breaks it)."""
    return {"label": label, "data": {"x": _values(x), "y": _values(y)}, "color": color, "radius": _values(radius),
            "marker": _values(marker), "fill": _values(fill), "edge": _values(edge), "edge_width": edge_width,
            "line": line, "dash": list(dash), "rows": columns(rows) if rows is not None else None}


def line(label: str, x, y, color: str, *, dash=(), width: float = 1.5, listed: bool = True) -> dict:
    """A line without points and without hover; `listed`: in the legend."""
    return {"label": label, "data": {"x": _values(x), "y": _values(y)}, "color": color, "line": True,
            "points": False, "dash": list(dash), "width": width, "unlisted": not listed}


def bar_chart(title: str, labels: list[str], stacks: list[tuple[str, str, list[float]]], x_label: str,
              y_label: str, width: int, height: int, *, y_max: float | None = None, unit: str = "ms",
              hover_title: str = "", footer: str = "total") -> dict:
    """Stacked bars, one per label: `stacks` (name, colour, one value per label), bottom first. The hover lists
    every part of the bar under it and their sum (`footer`)."""
    return {"type": "bar", "title": title, "labels": [str(v) for v in labels], "stacked": True,
            "datasets": [{"label": n, "color": c, "values": _values(v)} for n, c, v in stacks],
            "x": {"label": x_label}, "y": {"label": y_label, "min": 0, "suggested_max": y_max}, "width": width,
            "height": height, "unit": unit, "hover_title": hover_title, "footer": footer, "legend": "right",
            "zoom": "x"}


def table_section(df: pd.DataFrame, spec, filters, text_cols: list[str], name: str, height: int = 360,
                  choose: tuple[str, str, str] | None = None) -> dict:
    """A sortable table of `df`'s columns in `spec` ((title, column, format)), a chooser per (title, column) of
    `filters` that has more than one value ("(all)" first), a text box over `text_cols`; `choose`: (title,
    column, value), a chooser without "(all)" set to value. Its elements carry data-table=`name`."""
    fields = list(dict.fromkeys([c for _, c, _ in spec] + [c for _, c in filters] + list(text_cols)
                                + ([choose[1]] if choose else [])))
    chosen = [{"title": t, "field": c, "all": True} for t, c in filters if df[c].nunique() > 1]
    if choose:
        chosen.insert(0, {"title": choose[0], "field": choose[1], "all": False, "value": choose[2]})
    return {"kind": "table", "name": name, "data": columns(df[fields]), "height": height, "text": list(text_cols),
            "columns": [{"title": t, "field": c, "format": f or "text"} for t, c, f in spec], "filters": chosen}


def columns(df: pd.DataFrame) -> dict:
    """The frame as JSON-ready columns: numbers as numbers (missing: null), anything else as text."""
    return {str(c): _values(df[c]) for c in df.columns}


def _values(v):
    if v is None or isinstance(v, (str, int, float)):
        return v
    s = pd.Series(v) if not isinstance(v, pd.Series) else v
    if pd.api.types.is_bool_dtype(s):
        return s.astype(int).to_numpy()
    if pd.api.types.is_integer_dtype(s) and not s.hasnans:
        return s.to_numpy(dtype=np.int64)
    if pd.api.types.is_numeric_dtype(s):
        return s.to_numpy(dtype=float, na_value=np.nan)   # NaN is written as null
    return [None if x is None or x is pd.NA or (isinstance(x, float) and x != x) else str(x) for x in s.tolist()]


def rgba(color: str, alpha: float) -> str:
    """'#1f77b4', 0.5 -> 'rgba(31,119,180,0.5)'."""
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha:g})"
