"""report.html of analyze, compare, sweep and load, opened in a real browser (headless Chromium, Debian's
package, installed by tests/run): no JavaScript error, every plot drawn (its canvas painted), the step chooser and
the table filters change what the tables list; one self-contained file, under 2 MB for a 2.3 MB trace (Bokeh's pages were 2.5 MB)."""
import json
import re
import shutil
import subprocess

import pytest

from tests.conftest import DATA, run_cli

HF = DATA / "h200_hf_gpt2_decode_b16.json.gz"            # 2.3 MB
VLLM = DATA / "h200_vllm_gpt2_decode_b16_graphs.json.gz"  # CUDA graphs, FA3 kernels, prefill/mixed/decode steps

# Injected into a copy of the report: once report.js has drawn the page, count the charts, the painted pixels of
# each chart's canvas and the datasets without a point, then drive the step chooser and the kernel table's filters
# as a person would (choosing, typing, with the events a browser sends) and count the rows the tables list; the
# result goes into the DOM that --dump-dom prints.
CHECK = """<script>
window.__errors = [];
window.addEventListener("error", (e) => window.__errors.push(String(e.message)));
window.addEventListener("unhandledrejection", (e) => window.__errors.push(String(e.reason)));
const __later = (ms) => new Promise((ok) => setTimeout(ok, ms));
async function __check() {
  const out = {}, charts = window.tracerPage.charts;
  await __later(100);
  out.plots = charts.length;
  out.painted = charts.map((c) => {
    const px = c.canvas.getContext("2d").getImageData(0, 0, c.canvas.width, c.canvas.height).data;
    let n = 0;
    for (let i = 0; i < px.length; i += 4) if (px[i + 3] > 0 && (px[i] < 245 || px[i + 1] < 245 || px[i + 2] < 245)) n++;
    return n;
  });
  const sets = charts.flatMap((c) => c.data.datasets);
  out.glyphs = sets.length;
  out.glyphs_empty = sets.filter((d) => !(d.data.length > 0)).length;
  const rows = (name) => Number(document.querySelector(`table[data-name="${name}"]`)?.dataset.rows);
  const choose = async (sel, value) => { sel.value = value; sel.dispatchEvent(new Event("change")); await __later(50); };
  const step = document.querySelector('select[data-table="step-kernels"]');
  if (step) {
    out.step_rows = [rows("step-kernels")];
    await choose(step, step.options[step.options.length - 1].value);
    out.step_rows.push(rows("step-kernels"));
  }
  const text = document.querySelector('input[data-table="kernels"]');
  if (text) {
    out.kernel_rows = [rows("kernels")];
    text.value = "nvjet";
    text.dispatchEvent(new Event("input"));
    await __later(50);
    out.kernel_rows.push(rows("kernels"));
    const phase = document.querySelector('select[data-table="kernels"][data-field="phase"]');
    if (phase) { await choose(phase, "decode"); out.kernel_rows.push(rows("kernels")); }
  }
  for (const [name, field] of [["sweep", "backend"], ["load", "label"]]) {
    const sel = document.querySelector(`select[data-table="${name}"][data-field="${field}"]`);
    if (sel) {
      out.run_rows = [rows(name)];
      await choose(sel, sel.options[1].value);
      out.run_rows.push(rows(name));
    }
  }
  out.errors = window.__errors;
  const pre = document.createElement("pre");
  pre.id = "tracer-check";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}
window.addEventListener("load", function wait() {
  if (!window.tracerPage || !window.tracerPage.ready) return setTimeout(wait, 50);
  __check().catch((e) => { window.__errors.push(String(e)); });
});
</script>"""
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.skip("chromium not installed (tests/run installs Debian's package)")
    return exe


def open_in_chromium(report, tmp_path) -> tuple[dict, str]:
    """(what the check script found, Chromium's console log) for `report` opened from disk."""
    page = tmp_path / "checked.html"
    page.write_text(report.read_text().replace("<head>", "<head>" + CHECK, 1))
    proc = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=30000", "--dump-dom",
                           page.as_uri()], capture_output=True, text=True, timeout=300)
    m = re.search(r'<pre id="tracer-check">(.*?)</pre>', proc.stdout, re.S)
    assert m, f"the check never ran (the page did not load or report.js never finished):\n{proc.stderr[-3000:]}"
    return json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&")), proc.stderr


def console_errors(log: str) -> list[str]:
    return [ln for ln in log.splitlines()
            if "CONSOLE" in ln and re.search(r"Uncaught|Error", ln)]


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory):
    out = tmp_path_factory.mktemp("html") / "hf"
    proc = run_cli("analyze", HF, "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("html") / "cmp"
    proc = run_cli("compare", HF, VLLM, "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out


def test_report_html_is_one_self_contained_file_under_2_mb(analyzed, compared):
    for folder in (analyzed, compared):
        text = (folder / "report.html").read_text()
        assert not re.search(r"<script[^>]+src=|<link[^>]+href=\"?https?:", text)   # nothing fetched
        assert "Chart.js" in text and "tracer-page" in text and "Roofline per phase" in text
    assert HF.stat().st_size > 2e6
    assert (analyzed / "report.html").stat().st_size < 2e6
    assert (compared / "report.html").stat().st_size < 2e6


def test_analyze_report_renders_in_chromium(analyzed, tmp_path):
    found, log = open_in_chromium(analyzed / "report.html", tmp_path)
    assert found["errors"] == [] and console_errors(log) == [], (found, console_errors(log))
    # HF decode_b16: prefill and decode rooflines, decode's per-step bars (HF's prefill is one range, no steps)
    assert found["plots"] == 3, found
    assert all(n > 2000 for n in found["painted"]), found
    assert found["glyphs"] > 10 and found["glyphs_empty"] == 0, found
    assert found["step_rows"][0] > 0 and found["step_rows"][1] > 0, found
    k = found["kernel_rows"]
    assert k[0] > k[1] > 0 and k[2] <= k[1], found   # nvjet GEMMs among all kernels, then decode's only


def test_compare_report_renders_in_chromium(compared, tmp_path):
    found, log = open_in_chromium(compared / "report.html", tmp_path)
    assert found["errors"] == [] and console_errors(log) == [], (found, console_errors(log))
    # rooflines of prefill, mixed, decode; per phase the mean step of each run, then the step bars of HF (decode)
    # and vLLM (prefill, mixed, decode)
    assert found["plots"] == 3 + 3 + 4, found
    assert all(n > 2000 for n in found["painted"]), found
    assert found["glyphs"] > 10 and found["glyphs_empty"] == 0, found
    assert found["step_rows"][1] > 0, found
    assert found["kernel_rows"][0] > found["kernel_rows"][1] > 0, found


def test_hovers_name_what_a_point_is(compared):
    """The roofline's points carry the hover fields, FA3's kernels under their operation's name."""
    text = (compared / "report.html").read_text()
    for field in ("model op", "layer", "calls", "% of roof", "bound", "flag", "FLOPs", "DRAM bytes"):
        assert field in text, field
    assert "FlashAttnFwdSm90" in text and "FlashAttnFwdCombine" in text


def test_sweep_and_load_reports_render_in_chromium(tmp_path):
    """A committed `tracer sweep` (H100, batch 1..64, HF and vLLM) and the H200 serving sweeps (HF and vLLM,
    1..256 req/s) on one load report."""
    import pandas as pd

    from analysis.reports.html.sweep_pages import load_html, sweep_html
    sweep_page = tmp_path / "sweep.html"
    sweep_page.write_text(sweep_html(DATA / "h100_sweep_batch"))
    folders = []
    for backend in ("hf", "vllm"):
        folder = tmp_path / backend
        folder.mkdir()
        pd.read_csv(DATA / "h200_serve_gpt2" / f"{backend}_sweep.csv").to_parquet(folder / "sweep.parquet")
        folders.append(folder)
    load_page = tmp_path / "load.html"
    load_page.write_text(load_html(folders))
    for page, plots in ((sweep_page, 3), (load_page, 4)):
        found, log = open_in_chromium(page, tmp_path)
        assert found["errors"] == [] and console_errors(log) == [], (found, console_errors(log))
        assert found["plots"] == plots, found
        assert all(n > 2000 for n in found["painted"]), found
        assert found["glyphs_empty"] == 0, found
        assert found["run_rows"][0] > found["run_rows"][1] > 0, found   # one backend's rows of both
