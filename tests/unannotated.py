"""Derived fixtures: committed traces as users have them, without tracer's step annotations or sidecar.

- `strip_vllm_steps(src, dst, frames)`: a vLLM Chrome trace of ours with its step annotations
  (`execute_context_...`, user_annotation and gpu_user_annotation) and tracer's Perfetto phase track removed.
  With `frames`, a `python_function` event `vllm/v1/worker/gpu_model_runner.py(NNN): execute_model` is put where
  each step annotation was (same thread, start and duration), as vLLM V1 traces recorded with stacks carry them:
  the committed fixtures were recorded without stacks, so these frames are synthesized, not recorded.
- `decode_window(src, dst)`: the same from the third engine step on (steady decode, one full CUDA graph a step).
- `strip_hf_ranges(src, dst)`: an HF Chrome trace of ours without any phase range.
- `hf_window_mid_step(src, dst)`: that from the middle of its fourth decode step on.
- `strip_nsys_steps(src, dst)`: an nsys SQLite export (gzipped) with its per-step NVTX rows (`decode_step`)
  deleted, leaving the coarse `prefill` and `decode` ranges of a plain nsys capture.

No sidecar is written beside either. Run as a script to write them: `python tests/unannotated.py OUT_DIR`.
"""
from __future__ import annotations

import gzip
import re
import shutil
import sqlite3
import sys
from pathlib import Path

import orjson

DATA = Path(__file__).resolve().parent / "data"
VLLM_STEP = re.compile(r"^execute_context_\d+\(\d+\)_generation_\d+\(\d+\)")
PHASE_RANGES = ("prefill", "decode", "decode_step")
FRAME = "vllm/v1/worker/gpu_model_runner.py(1977): execute_model"


def strip_vllm_steps(src: Path, dst: Path, frames: bool = False) -> Path:
    doc = orjson.loads(gzip.decompress(Path(src).read_bytes()))
    kept = []
    for e in doc["traceEvents"]:
        name = e.get("name") if isinstance(e.get("name"), str) else ""
        if e.get("cat") == "tracer_phase":
            continue
        if e.get("cat") in ("user_annotation", "gpu_user_annotation") and VLLM_STEP.match(name):
            if frames and e["cat"] == "user_annotation":
                kept.append({"ph": "X", "cat": "python_function", "name": FRAME, "pid": e["pid"], "tid": e["tid"],
                             "ts": e["ts"], "dur": e["dur"], "args": {}})
            continue
        kept.append(e)
    doc["traceEvents"] = kept
    Path(dst).write_bytes(gzip.compress(orjson.dumps(doc), compresslevel=6, mtime=0))
    return Path(dst)


def strip_hf_ranges(src: Path, dst: Path) -> Path:
    """An HF Chrome trace of ours without its `prefill`, `decode` and `decode_step` ranges and phase track: a
    torch.profiler capture of a generate loop that marks nothing."""
    doc = orjson.loads(gzip.decompress(Path(src).read_bytes()))
    doc["traceEvents"] = [e for e in doc["traceEvents"] if e.get("cat") != "tracer_phase" and not (
        e.get("cat") in ("user_annotation", "gpu_user_annotation") and e.get("name") in PHASE_RANGES)]
    Path(dst).write_bytes(gzip.compress(orjson.dumps(doc), compresslevel=6, mtime=0))
    return Path(dst)


def hf_window_mid_step(src: Path, dst: Path, step: int = 3) -> Path:
    """`strip_hf_ranges` of the events from the middle of decode step `step` on (a capture started by time, inside
    a forward pass)."""
    doc = orjson.loads(gzip.decompress(Path(src).read_bytes()))
    steps = sorted((e["ts"], e["dur"]) for e in doc["traceEvents"]
                   if e.get("cat") == "user_annotation" and e.get("name") == "decode_step")
    t0 = steps[step][0] + steps[step][1] / 2
    doc["traceEvents"] = [e for e in doc["traceEvents"] if not isinstance(e.get("ts"), (int, float)) or e["ts"] >= t0]
    Path(dst).write_bytes(gzip.compress(orjson.dumps(doc), compresslevel=6, mtime=0))
    return strip_hf_ranges(dst, dst)


def decode_window(src: Path, dst: Path, first_step: int = 2) -> Path:
    """`strip_vllm_steps` of the events from the start of engine step `first_step` on (its annotation's CPU time),
    as a profiler started mid-run over steady decode would hold them (in the committed vLLM fixtures each decode
    step replays one full CUDA graph)."""
    doc = orjson.loads(gzip.decompress(Path(src).read_bytes()))
    starts = sorted(e["ts"] for e in doc["traceEvents"] if e.get("cat") == "user_annotation"
                    and VLLM_STEP.match(e.get("name") or ""))
    t0 = starts[first_step]
    doc["traceEvents"] = [e for e in doc["traceEvents"] if not isinstance(e.get("ts"), (int, float)) or e["ts"] >= t0]
    Path(dst).write_bytes(gzip.compress(orjson.dumps(doc), compresslevel=6, mtime=0))
    return strip_vllm_steps(dst, dst)


def strip_nsys_steps(src: Path, dst: Path) -> Path:
    with gzip.open(src) as f, open(dst, "wb") as out:
        shutil.copyfileobj(f, out)
    con = sqlite3.connect(dst)
    try:
        con.execute("DELETE FROM NVTX_EVENTS WHERE text = 'decode_step' OR textId IN "
                    "(SELECT id FROM StringIds WHERE value = 'decode_step')")
        con.commit()
    finally:
        con.close()
    return Path(dst)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    src = DATA / "h200_vllm_gpt2_decode_b16_graphs.json.gz"
    strip_vllm_steps(src, out / "vllm_gpt2_graphs_no_steps.json.gz")
    strip_vllm_steps(src, out / "vllm_gpt2_graphs_frames.json.gz", frames=True)
    decode_window(src, out / "vllm_gpt2_graphs_decode_window.json.gz")
    strip_hf_ranges(DATA / "h100_hf_gpt2_decode_b16_s128_o16.json.gz", out / "hf_gpt2_no_ranges.json.gz")
    strip_nsys_steps(DATA / "h100_hf_gpt2_decode_b16_s128_o16_nsys.sqlite.gz", out / "hf_gpt2_nsys_coarse.sqlite")
