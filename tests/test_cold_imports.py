"""`analyze`, `compare` and `check` read traces, config.json and the presets without importing torch or
transformers (1.5 s and 0.7 s of a cold start), and `check` draws nothing, so it imports no matplotlib either.
Each command runs as a user would, in a fresh interpreter, which reports the modules it ended with."""
import json
import shutil
import subprocess
import sys

from tests.conftest import DATA, ROOT

HEAVY = ("torch", "transformers", "vllm", "matplotlib")

# Runs the command as `python -m tracer.cli` would (its main(), without the quick exit that ends the process), then
# prints which heavy modules the run left in sys.modules.
_PROBE = """
import json, sys
sys.argv = ["tracer"] + json.loads(sys.argv[1])
from tracer.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
else:
    code = 0
sys.stderr.write("\\nHEAVY " + json.dumps(sorted(m for m in %r if m in sys.modules)) + " EXIT " + str(code) + "\\n")
""" % (HEAVY,)


def heavy_modules_of(*args) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps([str(a) for a in args])], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    tail = proc.stderr.strip().splitlines()[-1]
    assert tail.startswith("HEAVY ") and tail.endswith(" EXIT 0"), proc.stderr[-3000:]
    return json.loads(tail[len("HEAVY "):tail.index(" EXIT ")])


def test_analyze_of_a_preset_model_imports_no_torch(tmp_path):
    # No sidecar: the model comes from the preset dict and the workload from its name.
    trace = tmp_path / "hf_prefill.json.gz"
    shutil.copy(DATA / "h100_hf_gpt2_prefill_b1_s512.json.gz", trace)
    loaded = heavy_modules_of("analyze", trace, "--model", "gpt2", "--workload", "prefill_b1_s512",
                              "--out", tmp_path / "out")
    assert "torch" not in loaded and "transformers" not in loaded, loaded
    # it does draw roofline.png and breakdown.png (in a forked child where there is a second core, so matplotlib
    # need not be among this process's modules)
    assert (tmp_path / "out" / "roofline.png").stat().st_size and (tmp_path / "out" / "breakdown.png").stat().st_size
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["totals"]["kernels"] > 0


def test_analyze_of_a_checkpoint_folder_reads_its_config_json(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    meta = json.loads((DATA / "h200_vllm_gpt2_decode_b16_graphs.meta.json").read_text())
    (folder / "config.json").write_text(json.dumps(meta["model"]["config"]))
    trace = tmp_path / "vllm.json.gz"
    shutil.copy(DATA / "h200_vllm_gpt2_decode_b16_graphs.json.gz", trace)
    loaded = heavy_modules_of("analyze", trace, "--model", folder, "--out", tmp_path / "out")
    assert "torch" not in loaded and "transformers" not in loaded, loaded
    totals = json.loads((tmp_path / "out" / "summary.json").read_text())["totals"]
    assert totals["kernels"] > 0 and totals["unmodeled_pct"] < 5, totals   # graph replays modeled from the config


def test_compare_imports_no_torch(tmp_path):
    loaded = heavy_modules_of("compare", DATA / "h200_hf_gpt2_decode_b16.json.gz",
                              DATA / "h200_vllm_gpt2_decode_b16_graphs.json.gz", "--out", tmp_path / "cmp")
    assert "torch" not in loaded and "transformers" not in loaded, loaded


def test_check_imports_neither_torch_nor_matplotlib():
    loaded = heavy_modules_of("check", DATA / "h200_vllm_gpt2_decode_b16_graphs.json.gz")
    assert loaded == [], loaded
