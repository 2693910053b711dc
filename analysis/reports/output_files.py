"""The files of one trace's analysis (analysis.reports.report.analyze's result): kernels.parquet, ops.parquet,
summary.json, roofline.png, breakdown.png, report.md and report.html, written across processes so that the
slowest beside the page (the drawings, the Parquet tables) run on the core the parent leaves (tracer/io/forked.py)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pandas as pd

from analysis.reports.headline import backend_workload_label, peaks_line, source_lines


def write_outputs(result: dict, tables: dict, out_dir: str | Path, title: str,
                  children: dict | None = None) -> list[Path]:
    """Every output (write_outputs_into) built in a temporary folder that replaces `out_dir` whole
    (tracer.io.outputs)."""
    from tracer.io.outputs import output_folder

    out = Path(out_dir)
    with output_folder(out) as tmp:
        names = write_outputs_into(tmp, result, tables, title, children)
    return [out / n for n in names]


def write_table_parquet(df: pd.DataFrame, path: Path) -> None:
    """A per-launch or per-op table as Parquet: text columns dictionary-encoded without min/max statistics,
    numbers plain with theirs. Strings' statistics cost more than their encoding, and numbers (times, FLOPs)
    rarely repeat, so a dictionary for them is built and dropped: kernels.parquet of 270,708 launches 0.24-0.29 ->
    0.11 s of CPU, ops.parquet of 993,157 ops 0.14-0.16 -> 0.11 s (10 MB and 15 MB instead of 8 and 12)."""
    text = {c for c in df.columns
            if isinstance(df[c].dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(df[c].dtype)}
    df.to_parquet(path, index=False, use_dictionary=[c for c in df.columns if c in text],
                  write_statistics=[c for c in df.columns if c not in text])


def write_kernels_parquet(kernels: pd.DataFrame, folder: Path) -> None:
    write_table_parquet(kernels, folder / "kernels.parquet")


def write_ops_parquet(ops: pd.DataFrame, folder: Path) -> None:
    """ops.parquet (none for a trace without CPU ops). The analysis never changes the parsed ops in place (it
    gives the tables a new ops frame where it infers steps), so they can be written while it runs."""
    if len(ops):
        write_table_parquet(ops, folder / "ops.parquet")


def write_outputs_into(folder: Path, result: dict, tables: dict, title: str, children: dict | None = None,
                       written_early: dict | None = None) -> list[str]:
    """Every output written into `folder`; returns their names. A child draws the roofline and the breakdown
    (matplotlib is imported by it alone: tracer.io.forked) while this process writes the summary, report.md,
    report.html and the Parquet tables: `children` from analysis.reports.drawing_child.output_children, or a
    child forked here. `written_early`: outputs begun during the analysis, waited for here: "kernels.parquet"
    and "ops.parquet" (write_kernels_parquet, write_ops_parquet: a Future or a tracer.io.forked.ChildJob),
    "figures" (started_figures)."""
    from analysis.reports.tables import topic_tables
    from tracer.io.forked import joined

    early = written_early or {}
    figures = early.get("figures") or started_figures(result, folder, title, children)
    with joined(figures), ThreadPoolExecutor(1) as thread:
        # the Parquet tables on a thread (Arrow encodes and compresses them without the GIL) beside the texts
        parquet = [early.get("kernels.parquet") or thread.submit(write_kernels_parquet, result["kernels"], folder),
                   early.get("ops.parquet") or thread.submit(write_ops_parquet, tables["ops"], folder)]
        (folder / "summary.json").write_bytes(orjson.dumps(result["summary"], option=orjson.OPT_INDENT_2
                                                           | orjson.OPT_SERIALIZE_NUMPY, default=str))
        topics = topic_tables([(backend_workload_label(result["summary"], title), result)])
        (folder / "report.md").write_bytes(report_markdown(result, title, topics).encode())
        # report.html here, not in a child of its own beside this process's few texts: on the 623 MB trace the
        # child's fork and page faults cost 0.1 s of the page's 0.4 s
        _html_page(result, folder, title, topics)
        [job.result() for job in parquet]   # (a failed write raises here)
    return [n for n in ("kernels.parquet", "ops.parquet", "summary.json", "roofline.png", "breakdown.png",
                        "report.md", "report.html") if (folder / n).exists()]


def started_figures(result: dict, folder: Path, title: str, children: dict | None = None):
    """roofline.png and breakdown.png begun in the drawing child (`children`: write_outputs_into's), or in a child
    forked now; `result` needs only its "kernels", "peaks" and "wall" (analysis.reports.report.analyze gives them to
    its on_early_result hook before the last summaries). A tracer.io.forked job: write_outputs_into waits for it."""
    from tracer.io.forked import started_alongside

    return started_alongside(_figures, figure_inputs(result), folder, title,
                             child=(children or {}).get("drawing"))


def figure_inputs(result: dict) -> dict:
    """What the PNGs are drawn from: a child gets this, not the whole analysis, and a child forked before the
    analysis gets it through a pipe (the kernels summed per point: analysis.reports.plots.plotted_kernels)."""
    from analysis.reports.plots import plotted_kernels

    return {"kernels": plotted_kernels(result["kernels"]), "peaks": result["peaks"], "wall": result["wall"]}


def _figures(figures: dict, tmp: Path, title: str) -> None:
    from analysis.reports.plots import breakdown_plot, roofline_plot

    roofline_plot([(title, figures["kernels"], figures["peaks"])], tmp / "roofline.png", f"Roofline: {title}")
    breakdown_plot([(title, figures["wall"])], tmp / "breakdown.png", f"Wall time per step: {title}")


def _html_page(result: dict, tmp: Path, title: str, topics: list) -> None:
    from analysis.reports.html.analysis_page import analysis_html

    label = backend_workload_label(result["summary"], title)
    page = analysis_html(result, title, label, source_lines(result["summary"]), topics)
    (tmp / "report.html").write_bytes(page.encode())


def report_markdown(result: dict, title: str, topics: list) -> str:
    """report.md; `topics`: the run's analysis.reports.tables.topic_tables (report.html shows them too)."""
    from analysis.reports.headline import headline
    from analysis.reports.tables import render

    s = result["summary"]
    runs = [(backend_workload_label(s, title), result)]
    lines = [f"# {title}", "", " ".join(headline(runs)), "",
             f"Source: `{s['source']['path']}` ({s['source']['format']}), device {s['source']['device'] or 'unknown'}."]
    p = s["source"]["peaks"]
    if p:
        lines.append(peaks_line(p) + ".")
    for n in s["notices"]:
        lines.append(f"\n> {n}")
    lines += ["", "![roofline](roofline.png)", "", "![breakdown](breakdown.png)", "", render(topics, True)]
    from analysis.reports.deployment import deployment_markdown
    extra = deployment_markdown(runs)
    if extra:
        lines += ["", extra]
    if s.get("communication"):
        from analysis.timing.communication import markdown
        lines += ["", markdown(s["communication"])]
    return "\n".join(lines) + "\n"
