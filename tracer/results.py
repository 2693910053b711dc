"""The typed results of the Python API: one trace's Analysis and several runs' Comparison, frozen dataclasses over
what analysis.reports.report.analyze and analysis.reports.compare.compare_results return, with plots and outputs on demand."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True, eq=False, repr=False)
class Analysis:
    """What `tracer analyze` computes for one trace. `kernels`: the trace's kernels with work and bounds (flops,
    dram_bytes, work_source, intensity_flop_per_byte, achieved_tflops, achieved_gbps, roof_pct, bound);
    `phases`, `classes`, `top`: the per-phase summary, the time per phase and kernel class, the top kernels per
    phase; `summary`: the summary.json dict (keys documented in analysis/reports/report.py); `result`: everything
    analysis.reports.report.analyze returned, also reachable as `analysis["key"]` (keys added there show up here).

    >>> import tracer
    >>> a = tracer.load("tests/data/h100_hf_gpt2_decode_b16.json.gz").analyze()
    >>> a.summary["totals"]["kernels"], a.summary["source"]["peaks"]["source"], len(a.notices)
    (15924, 'datasheet', 2)
    """
    trace: Any  # the tracer.api.Trace analysed (not imported: api imports this module)
    result: Mapping[str, Any]
    kernels: pd.DataFrame = field(init=False)
    phases: pd.DataFrame = field(init=False)
    classes: pd.DataFrame = field(init=False)
    top: pd.DataFrame = field(init=False)
    summary: dict = field(init=False)
    notices: list = field(init=False)
    peaks: dict | None = field(init=False)

    def __post_init__(self):
        for name, key in (("kernels", "kernels"), ("phases", "phases"), ("classes", "classes"), ("top", "top"),
                          ("summary", "summary"), ("peaks", "peaks")):
            object.__setattr__(self, name, self.result.get(key))
        object.__setattr__(self, "notices", list(self.summary.get("notices") or []))

    def __getitem__(self, key: str):
        return self.result[key]

    def keys(self) -> list[str]:
        return list(self.result)

    def __repr__(self) -> str:
        phases = list(self.phases["phase"]) if len(self.phases) else []
        return f"Analysis({self.trace.name!r}, kernels={len(self.kernels)}, phases={phases}, notices={len(self.notices)})"

    @property
    def title(self) -> str:
        return self.trace.name

    def roofline_plot(self, path: str | Path) -> Path:
        """The kernels on the roofline (one colour per phase), as a PNG at `path`.

        >>> import tracer
        >>> a = tracer.load("tests/data/h100_hf_gpt2_decode_b16.json.gz").analyze()
        >>> a.roofline_plot("roofline.png").stat().st_size > 0
        True
        """
        from analysis.reports.plots import roofline_plot
        return roofline_plot([(self.title, self.kernels, self.peaks)], Path(path), f"Roofline: {self.title}")

    def breakdown_plot(self, path: str | Path) -> Path:
        """Wall time per step (GPU busy per kernel class, GPU idle in and between steps), as a PNG at `path`.

        >>> import tracer
        >>> a = tracer.load("tests/data/h100_hf_gpt2_decode_b16.json.gz").analyze()
        >>> a.breakdown_plot("breakdown.png").name
        'breakdown.png'
        """
        from analysis.reports.plots import breakdown_plot
        return breakdown_plot([(self.title, self.result["wall"])], Path(path), f"Wall time per step: {self.title}")

    def write(self, out_dir: str | Path) -> list[Path]:
        """What `tracer analyze --out out_dir` writes: kernels.parquet, ops.parquet, summary.json, roofline.png,
        breakdown.png, report.md, report.html; returns the paths.

        >>> import tracer
        >>> a = tracer.load("tests/data/h100_hf_gpt2_decode_b16.json.gz").analyze()
        >>> [p.name for p in a.write("gpt2_decode")][:3]
        ['kernels.parquet', 'ops.parquet', 'summary.json']
        """
        from analysis.reports.output_files import write_outputs
        return write_outputs(dict(self.result), dict(self.trace.tables), Path(out_dir), self.title)


@dataclass(frozen=True, eq=False, repr=False)
class Comparison:
    """Several analysed runs side by side. `table`: one row per figure (kernel time, per-phase GPU busy and wall
    time, bound shares, time per class, TTFT, decode ms/token, tokens/s, memory), one column per run, then the
    ratio of each run to the first; `runs`: (label, Analysis) pairs; `data`: what comparison.json holds is
    `data["json"]`.

    >>> import tracer
    >>> c = tracer.compare(["tests/data/h100_hf_gpt2_decode_b16.json.gz",
    ...                     "tests/data/h100_vllm_gpt2_decode_b16_graphs.json.gz"])
    >>> c.labels
    ['hf:decode_b16_s128_o64', 'vllm:decode_b16_s128_o64']
    """
    runs: tuple[tuple[str, Analysis], ...]
    data: Mapping[str, Any]

    @property
    def labels(self) -> list[str]:
        return [label for label, _ in self.runs]

    @property
    def table(self) -> pd.DataFrame:
        return self.data["table"]

    def __repr__(self) -> str:
        return f"Comparison({self.labels})"

    def display(self) -> pd.DataFrame:
        """The table as the CLI prints it: byte rows in GiB, numbers as floats.

        >>> import tracer
        >>> c = tracer.compare(["tests/data/h100_hf_gpt2_decode_b16.json.gz",
        ...                     "tests/data/h100_vllm_gpt2_decode_b16_graphs.json.gz"], labels=["hf", "vllm"])
        >>> c.display().loc["kv_cache_gib"].round(2).to_dict()
        {'hf': 0.1, 'vllm': 38.88, 'vllm / hf': 370.59}
        """
        from analysis.reports.compare import display_table
        return display_table(self.table)

    def write(self, out_dir: str | Path) -> list[Path]:
        """What `tracer compare --out out_dir` writes: roofline.png, breakdown.png, comparison.json, report.md,
        report.html.

        >>> import tracer
        >>> c = tracer.compare(["tests/data/h100_hf_gpt2_decode_b16.json.gz",
        ...                     "tests/data/h100_vllm_gpt2_decode_b16_graphs.json.gz"])
        >>> [p.name for p in c.write("hf_vs_vllm")]
        ['roofline.png', 'breakdown.png', 'comparison.json', 'report.md', 'report.html']
        """
        from analysis.reports.compare import write_comparison
        return write_comparison(dict(self.data), [(label, dict(a.result)) for label, a in self.runs], Path(out_dir))
