"""The Python API on the committed H100 fixtures: the walk-through of docs/python-api.md and the docstrings' examples run and
print what they say, the API's numbers equal the CLI's summary.json and comparison.json, `import tracer` stays
cheap, and the project's imports have no cycle."""
import contextlib
import doctest
import io
import re
import subprocess
import sys

import orjson
import pytest

import tracer
from tests.bench import import_layers
from tests.conftest import DATA, ROOT, run_cli

DECODE = DATA / "h100_hf_gpt2_decode_b16.json.gz"
VLLM = DATA / "h100_vllm_gpt2_decode_b16_graphs.json.gz"
PEAKS = DATA / "h100_peaks.json"


@pytest.fixture
def in_scratch(tmp_path, monkeypatch):
    """A working folder laid out like a clone (tests/data, traces/), so the examples' relative paths resolve and
    what they write stays out of the repository."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "data").symlink_to(DATA)
    (tmp_path / "traces").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def doc_examples() -> list[tuple[str, str | None]]:
    """(code, expected output) for each ```python block of docs/python-api.md; the output is the ```text block
    right after it, where there is one."""
    section = (ROOT / "docs" / "python-api.md").read_text()
    blocks = re.findall(r"```(python|text)\n(.*?)```", section, re.S)
    pairs = []
    for i, (kind, body) in enumerate(blocks):
        if kind == "python":
            nxt = blocks[i + 1] if i + 1 < len(blocks) else None
            pairs.append((body, nxt[1] if nxt and nxt[0] == "text" else None))
    return pairs


def test_docs_python_api_examples_print_what_they_say(in_scratch):
    examples = doc_examples()
    assert len(examples) >= 5
    namespace: dict = {}
    for code, expected in examples:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, "docs/python-api.md", "exec"), namespace)
        if expected is not None:
            assert out.getvalue() == expected, code
    for name in ("gpt2_decode_roofline.png", "gpt2_decode_breakdown.png", "gpt2_decode_analysis/summary.json",
                 "hf_vs_vllm/comparison.json", "api_cpu.meta.json"):
        assert (in_scratch / "traces" / name).stat().st_size > 0, name


@pytest.mark.parametrize("module", ["tracer.api", "tracer.results"])
def test_docstring_examples(module, in_scratch):
    mod = sys.modules[module] if module in sys.modules else __import__(module, fromlist=["_"])
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 8 and result.failed == 0, result


@pytest.mark.parametrize("path", [DECODE, VLLM, DATA / "h100_hf_gpt2_decode_b16_s128_o16_nsys.sqlite.gz",
                                  DATA / "h100_hf_gpt2_prefill_b1_s512_ncu.ncu.csv.gz"], ids=lambda p: p.name)
def test_api_summary_equals_cli_summary_json(path, tmp_path):
    proc = run_cli("analyze", path, "--out", tmp_path, "--peaks", PEAKS, "--model", "gpt2")
    assert proc.returncode == 0, proc.stderr
    cli = orjson.loads((tmp_path / "summary.json").read_bytes())
    a = tracer.load(path).analyze(peaks=PEAKS, model="gpt2")
    ours = orjson.loads(orjson.dumps(a.summary, option=orjson.OPT_SERIALIZE_NUMPY, default=str))
    assert ours == cli
    assert cli["totals"]["kernels"] == len(a.kernels) > 0
    by_phase = {p["phase"]: p["kernel_us"] for p in cli["phases"]}
    assert by_phase == pytest.approx(a.kernels.groupby("phase", observed=True)["dur_us"].sum().to_dict())


def test_api_comparison_equals_cli_comparison_json(tmp_path):
    proc = run_cli("compare", DECODE, VLLM, "--out", tmp_path, "--peaks", PEAKS)
    assert proc.returncode == 0, proc.stderr
    cli = orjson.loads((tmp_path / "comparison.json").read_bytes())
    c = tracer.compare([DECODE, tracer.load(VLLM)], peaks=PEAKS)
    ours = orjson.loads(orjson.dumps(c.data["json"], option=orjson.OPT_SERIALIZE_NUMPY, default=str))
    assert ours == cli
    assert c.labels == ["hf:decode_b16_s128_o64", "vllm:decode_b16_s128_o64"]


def test_acceptance_one_liner_from_the_repository_root():
    code = ("import tracer; t = tracer.load('tests/data/h100_hf_gpt2_decode_b16.json.gz'); "
            "print(t.analyze().phases)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "decode" in proc.stdout and "prefill" in proc.stdout


def test_import_tracer_loads_neither_pandas_nor_torch():
    code = ("import sys, tracer; print(sorted(m for m in ('pandas', 'numpy', 'torch', 'analysis.reports.report', "
            "'tracer.parse') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_no_api_function_is_named_like_a_module():
    """`tracer.load` and `tracer.record` are the API's functions; the load generator and the recorders live in
    tracer.loadgen and tracer.recording, and the old import paths are gone rather than aliased."""
    import importlib

    import tracer.loadgen.runner  # noqa: F401
    import tracer.recording.run  # noqa: F401

    package = ROOT / "tracer"
    for name in tracer.__all__:
        assert not (package / name).exists() and not (package / f"{name}.py").exists(), name
    assert tracer.load is tracer.api.load and tracer.record is tracer.api.record
    for old in ("tracer.load.runner", "tracer.record.run"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(old)


def test_bad_input_raises_one_line_tracer_error(tmp_path):
    with pytest.raises(tracer.TracerError, match="no such file"):
        tracer.load(tmp_path / "missing.json.gz")
    (tmp_path / "junk.json").write_bytes(b"not a trace")
    with pytest.raises(tracer.TracerError, match="not a trace"):
        tracer.load(tmp_path / "junk.json")
    with pytest.raises(tracer.TracerError, match="at least two"):
        tracer.compare([DECODE])
    with pytest.raises(tracer.TracerError, match="labels"):
        tracer.compare([DECODE, VLLM], labels=["only one"])


def test_project_imports_have_no_cycle():
    graph = import_layers.import_graph()
    assert "tracer.recording.run" in graph and "tracer.recording.progress" in graph["tracer.recording.ncu"]
    assert import_layers.cycles(graph) == []


def test_parsing_and_analysis_never_import_the_recording_layer():
    """Data flows one way: analysis/ and tracer/parse/ read tables and files through tracer/io, never tracer/record."""
    graph = import_layers.import_graph()
    climbing = {(m, d) for m, deps in graph.items() if m.startswith(("analysis", "tracer.parse"))
                for d in deps if d.startswith("tracer.recording")}
    assert any(m.startswith("analysis") for m in graph) and any(m.startswith("tracer.parse") for m in graph)
    assert climbing == set()


def test_cycle_check_finds_a_cycle_through_a_lazy_import(tmp_path):
    """The check itself: two modules that import each other, one of them inside a function, are a cycle."""
    pkg = tmp_path / "tracer" / "recording"
    pkg.mkdir(parents=True)
    (tmp_path / "tracer" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "run.py").write_text("from tracer.recording import ncu\n")
    (pkg / "ncu.py").write_text("def f():\n    from tracer.recording.run import progress\n")
    (pkg / "sidecar.py").write_text("import os\n")
    graph = import_layers.import_graph(tmp_path)
    assert import_layers.cycles(graph) == [["tracer.recording.ncu", "tracer.recording.run"]]
