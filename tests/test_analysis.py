"""Analysis on the committed H100 fixtures: work model against torch's own FLOP formulas and Nsight Compute,
outputs written and readable, comparisons equal to the single analyses."""
import matplotlib.image as mpimg
import numpy as np
import orjson
import pytest

from analysis.reports.report import analyze
from analysis.roofline.placement import kernel_work, merge_ncu, ncu_comparison_by_class, roofline
from analysis.work.op_work import op_work
from tests.conftest import DATA, ROOT, run_cli
from tracer.parse import load_tables
from tracer.parse.ncu import ncu_kernels

FIXTURES = sorted(DATA.glob("*.json.gz")) + sorted(DATA.glob("*.sqlite.gz"))
PEAKS = DATA / "h100_peaks.json"


def test_analytic_gemm_flops_equal_torch_formulas():
    """torch.profiler's with_flops uses the formulas of torch.utils.flop_counter; our work model must agree on
    every GEMM op recorded in the fixture."""
    from torch.utils import flop_counter as fc

    ops = load_tables(DATA / "h100_hf_gpt2_decode_b16_s128_o16.json.gz")["ops"]
    gemm = ops[ops["name"].isin(["aten::mm", "aten::addmm", "aten::bmm"])]
    assert len(gemm) > 100
    checked = 0
    for name, shapes, dtypes in gemm[["name", "input_shapes", "input_dtypes"]].drop_duplicates().itertuples(index=False):
        s = orjson.loads(shapes)
        ours, _, _ = op_work(name, shapes, dtypes)
        if name == "aten::mm":
            theirs = fc.mm_flop(s[0], s[1])
        elif name == "aten::addmm":
            theirs = fc.addmm_flop(s[0], s[1], s[2])
        else:
            theirs = fc.bmm_flop(s[0], s[1])
        assert ours == theirs, (name, s)
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_analyze_writes_all_outputs(path, tmp_path):
    proc = run_cli("analyze", path, "--out", tmp_path, "--peaks", PEAKS)
    assert proc.returncode == 0, proc.stderr
    for name in ("kernels.parquet", "summary.json", "roofline.png", "breakdown.png", "report.md"):
        assert (tmp_path / name).stat().st_size > 0, name
    for png in ("roofline.png", "breakdown.png"):
        img = mpimg.imread(tmp_path / png)
        assert img.shape[0] >= 400 and img.shape[1] >= 600
        assert np.std(img[..., :3]) > 0.02  # something is drawn, not a blank canvas
    summary = orjson.loads((tmp_path / "summary.json").read_bytes())
    assert summary["source"]["peaks"]["source"].startswith("measured")
    assert summary["totals"]["kernels"] > 0


@pytest.mark.parametrize("name", ["h100_hf_gpt2_decode_b16.json.gz", "h200_vllm_gpt2_decode_b16_graphs.json.gz"])
def test_the_outputs_written_during_the_analysis_are_those_it_ends_with(name, tmp_path):
    """`tracer analyze` writes ops.parquet (on a thread), kernels.parquet (in a child) and the PNGs (in the drawing
    child) while the analysis goes on (as soon as the kernel table and the wall time are final, before the last
    summaries), then report.html itself: every file is the one written after the analysis by write_outputs (as
    the Python API writes them)."""
    import pandas as pd

    from analysis.reports.output_files import write_outputs
    from tracer.api import analysis_of, load

    proc = run_cli("analyze", DATA / name, "--out", tmp_path / "out", "--peaks", PEAKS)
    assert proc.returncode == 0, proc.stderr
    tables, result = analysis_of(load(DATA / name), PEAKS)
    write_outputs(result, tables, tmp_path / "after", name)
    for file in ("kernels.parquet", "ops.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out" / file),
                                      pd.read_parquet(tmp_path / "after" / file), check_exact=True)
    for file in ("report.html", "summary.json", "report.md", "roofline.png", "breakdown.png"):
        assert (tmp_path / "out" / file).read_bytes() == (tmp_path / "after" / file).read_bytes(), file


def test_an_analysis_that_fails_after_its_early_outputs_began_leaves_no_folder_and_no_child(tmp_path, monkeypatch):
    """The Parquet kernel table and the PNGs begin in children before the last summaries; when one of those
    fails, the error is raised, the children are stopped and nothing of the output folder is left."""
    import multiprocessing

    import analysis.reports.report as report
    from tracer.commands import analyze_path

    def broken(*args, **kwargs):
        raise RuntimeError("a summary that fails")
    monkeypatch.setattr(report, "phase_summary", broken)
    with pytest.raises(RuntimeError, match="a summary that fails"):
        analyze_path(str(DATA / "h100_hf_gpt2_decode_b16.json.gz"), str(tmp_path / "out"), True, PEAKS)
    assert list(tmp_path.iterdir()) == []
    assert multiprocessing.active_children() == []


def test_decode_is_launch_bound_and_prefill_gemms_compute_bound():
    t = load_tables(DATA / "h100_hf_gpt2_decode_b16.json.gz")
    from analysis.roofline.peaks import measured_peaks
    r = analyze(t, None, PEAKS)
    phases = {p["phase"]: p for p in r["summary"]["phases"]}
    assert phases["decode"]["gpu_busy_pct_of_wall"] < 60 and "launch" in phases["decode"]["verdict"]
    llama = analyze(load_tables(DATA / "h100_hf_llama-1b_prefill_b1_s512.json.gz"), None, PEAKS)["kernels"]
    big = llama[(llama.kernel_class == "gemm") & (llama.flops > 5e9)]
    assert len(big) > 10 and (big["bound"] == "compute").mean() > 0.8
    assert measured_peaks("x", PEAKS)["bf16"] == pytest.approx(769.5, abs=0.1)


@pytest.mark.parametrize("model", ["gpt2", "llama-1b"])
def test_prefill_against_nsight_compute(model):
    """Same workload, same H100: ncu's tensor-path FLOPs and DRAM bytes against the analytic model."""
    k = roofline(kernel_work(load_tables(DATA / f"h100_hf_{model}_prefill_b1_s512.json.gz")["kernels"]), None)
    ncu = ncu_kernels(DATA / f"h100_hf_{model}_prefill_b1_s512_ncu.ncu.csv.gz")
    matched = merge_ncu(k, ncu, "prefill", None)
    assert len(matched) >= 0.9 * min(len(ncu), (k.phase == "prefill").sum())
    by = ncu_comparison_by_class(matched).set_index("kernel_class")
    # GEMM FLOPs: the tensor cores count the padding of partial tiles, so ncu reads a few percent more
    assert 0.9 <= by.loc["gemm", "flops_ratio"] <= 1.02
    for cls in ("elementwise", "norm"):
        if cls in by.index:
            assert 0.5 <= by.loc[cls, "dram_ratio"] <= 2.0


def test_ncu_gemm_counter_is_flops():
    ncu = ncu_kernels(DATA / "h100_hf_gpt2_prefill_b1_s512_ncu.ncu.csv.gz")
    assert (ncu["tensor_flops"] > 0).sum() >= 48  # 4 GEMMs a layer, 12 layers
    assert ncu["dur_us"].between(0.5, 5000).all()


def test_compare_equals_single_analyses(tmp_path):
    a, b = DATA / "h100_hf_gpt2_decode_b16.json.gz", DATA / "h100_vllm_gpt2_decode_b16_graphs.json.gz"
    proc = run_cli("compare", a, b, "--out", tmp_path, "--json", "--peaks", PEAKS)
    assert proc.returncode == 0, proc.stderr
    cmp = orjson.loads(proc.stdout)
    for path, row in zip((a, b), cmp["runs"]):
        single = analyze(load_tables(path), None, PEAKS)["summary"]
        assert row["kernel_ms"] == pytest.approx(single["totals"]["kernel_us"] / 1e3)
        for p in single["phases"]:
            assert row[f"{p['phase']}_gpu_busy_ms"] == pytest.approx(p["gpu_busy_us"] / 1e3)
    assert cmp["runs"][1]["output_tokens_per_s"] > cmp["runs"][0]["output_tokens_per_s"]
    for png in ("roofline.png", "breakdown.png"):
        assert mpimg.imread(tmp_path / png).shape[1] >= 600


def test_compare_same_label_runs(tmp_path):
    """One file given twice (or two runs of one workload) share a label; compare tells them apart with #2."""
    a = DATA / "h100_hf_gpt2_prefill_b1_s512.json.gz"
    proc = run_cli("compare", a, a, "--out", tmp_path, "--json", "--peaks", PEAKS)
    assert proc.returncode == 0, proc.stderr
    runs = orjson.loads(proc.stdout)["runs"]
    assert runs[1]["run"] == runs[0]["run"] + "#2"
    assert runs[0]["kernel_ms"] == pytest.approx(runs[1]["kernel_ms"])


def test_docs_document_the_schema():
    """docs/files.md's table sections are the schema's own markdown: a column added to tracer/schema.py without
    the docs, or the other way round, fails here."""
    from tracer.schema import TABLES, markdown_table
    page = (ROOT / "docs" / "files.md").read_text()
    for table in TABLES:
        assert markdown_table(table) in page, table
