"""Several rank traces as one set of tables: per-rank tables, NCCL bytes and compute/communication overlap,
each checked against a plain read of the raw events (json and loops here, not the code under test)."""
import gzip
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import pandas as pd
import pytest

from tests.conftest import DATA, EXTERNAL, ROOT, assert_one_line_error, run_cli
from tracer.parse.ranks import read_dataset

HTA = DATA / "hta_multirank"
ELEM = {"float": 4, "long": 8, "int": 4, "unsigned char": 1, "signed char": 1, "bfloat16": 2, "half": 2}


def raw(path):
    with gzip.open(path) as f:
        return json.load(f)


def union(intervals):
    total, end = 0.0, -math.inf
    for s, e in sorted(intervals):
        if e <= end:
            continue
        total += e - max(s, end)
        end = e
    return total


def raw_overlap(events):
    """compute (non-NCCL kernels, memcpy, memset) and NCCL intervals of one rank, and their overlap."""
    comm, comp = [], []
    for e in events:
        if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset"):
            (comm if e["cat"] == "kernel" and "nccl" in e["name"].lower() else comp).append(
                (e["ts"], e["ts"] + e["dur"]))
    c, w = union(comm), union(comp)
    return c, w, c + w - union(comm + comp)


@pytest.fixture(scope="module")
def hta_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("ranks")
    proc = run_cli("analyze", HTA, "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out


def test_per_rank_tables_match_raw_events(hta_out):
    k = read_dataset(hta_out / "kernels")
    for f in sorted(HTA.glob("*.json.gz")):
        doc = raw(f)
        rank = doc["distributedInfo"]["rank"]
        kernels = [e for e in doc["traceEvents"] if e.get("ph") == "X" and e.get("cat") == "kernel"]
        mine = k[k["rank"] == rank]
        assert len(mine) == len(kernels)
        assert mine["dur_us"].sum() == pytest.approx(sum(e["dur"] for e in kernels))
    assert sorted(k["rank"].unique()) == [0, 1]


def test_communication_bytes_and_overlap_match_raw_events(hta_out):
    summary = json.loads((hta_out / "summary.json").read_text())
    comms = read_dataset(hta_out / "comms")
    per_rank = {r["rank"]: r for r in summary["communication"]["per_rank"]}
    for f in sorted(HTA.glob("*.json.gz")):
        doc = raw(f)
        rank = doc["distributedInfo"]["rank"]
        # one nccl:* annotation per collective call, its message as Input Dims / Input type
        expected = 0
        for e in doc["traceEvents"]:
            if e.get("cat") == "user_annotation" and e["name"].startswith("nccl:") and e["args"].get("Input Dims"):
                expected += math.prod(e["args"]["Input Dims"][0]) * ELEM[e["args"]["Input type"][0]]
        mine = comms[comms["rank"] == rank]
        got = sum(max(a, b if b == b else 0) * ELEM[d] for a, b, d in
                  zip(mine["in_nelems"].astype(float), mine["out_nelems"].astype(float), mine["dtype"]))
        assert got == expected > 0
        c, w, overlap = raw_overlap(doc["traceEvents"])
        assert per_rank[rank]["comm_us"] == pytest.approx(c)
        assert per_rank[rank]["compute_us"] == pytest.approx(w)
        assert per_rank[rank]["overlap_us"] == pytest.approx(overlap)
        assert 0 < overlap < c
    coll = {r["collective"]: r for r in summary["communication"]["collectives"]}
    assert set(coll) == {"all_reduce", "all_to_all", "all_gather"}
    # busbw by nccl-tests: all_reduce 2(n-1)/n of algbw, n = the world size these traces record (128)
    ar = coll["all_reduce"]
    assert ar["median_busbw_gbps"] == pytest.approx(ar["median_algbw_gbps"] * 2 * 127 / 128)
    slow = summary["communication"]["straggler_steps"][0]
    assert slow["ranks"] == 2 and slow["max_wait_us"] >= 0


def test_nccl_kernel_args_give_bytes(shared_dir, tmp_path):
    trace = EXTERNAL / "hta" / "nccl_parser_config_nccl_data.json.gz"
    doc = raw(trace)
    expected = {}
    for e in doc["traceEvents"]:
        if e.get("cat") == "kernel" and "Collective name" in e.get("args", {}):
            a = e["args"]
            size = {"Float": 4, "Long": 8}[a["dtype"]] * max(a["In msg nelems"], a["Out msg nelems"])
            expected[a["Collective name"]] = expected.get(a["Collective name"], 0) + size
    proc = run_cli("analyze", trace, "--out", tmp_path / "a", "--json")
    assert proc.returncode == 0, proc.stderr
    coll = {r["collective"]: r for r in json.loads(proc.stdout)["communication"]["collectives"]}
    assert coll["all_reduce"]["bytes"] == expected["allreduce"]
    assert coll["broadcast"]["bytes"] == expected["broadcast"]
    assert coll["all_reduce"]["median_busbw_gbps"] == pytest.approx(coll["all_reduce"]["median_algbw_gbps"])  # n=2


def test_ray_gives_the_same_tables_as_local_processes(hta_out, tmp_path):
    pytest.importorskip("ray")
    proc = run_cli("analyze", HTA, "--out", tmp_path / "r", "--ray", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for table in ("kernels", "memops", "ops", "ranges", "comms"):
        pd.testing.assert_frame_equal(read_dataset(hta_out / table), read_dataset(tmp_path / "r" / table))
    a, b = (json.loads((d / "summary.json").read_text())["communication"] for d in (hta_out, tmp_path / "r"))
    assert a == b


def test_a_rank_alone_on_an_unnamed_gpu_gets_its_roofline_points_without_roofs(tmp_path):
    """HTA's rank 1 names no GPU (no deviceProperties) and has modeled kernels: its roofline shows their points
    with no roof (the axes once failed to fit points without peaks), and a notice says why there are no
    distances to the roof."""
    proc = run_cli("analyze", HTA / "sampled_rank-1.json.gz", "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["source"]["peaks"] is None
    assert any(n.startswith("the trace names no GPU") for n in summary["notices"])
    points = pd.read_parquet(tmp_path / "out" / "kernels.parquet").query("flops > 0 and work_source != 'unmodeled'")
    assert len(points) > 0 and (tmp_path / "out" / "roofline.png").stat().st_size > 10_000


def test_two_files_of_one_rank_is_one_line_error(tmp_path):
    for i in (0, 1):
        shutil.copy(HTA / "sampled_rank-0.json.gz", tmp_path / f"copy{i}.json.gz")
    assert "both rank 0" in assert_one_line_error(run_cli("analyze", tmp_path, "--out", tmp_path / "o"))
    assert not (tmp_path / "o" / "summary.json").exists()


TP2 = """
import os, sys
sys.path.insert(0, {root!r})
if __name__ == "__main__":
    from workloads.models import saved_checkpoint
    import vllm
    from vllm import SamplingParams
    llm = vllm.LLM(model=saved_checkpoint("gpt2", 2, "float32"), skip_tokenizer_init=True, dtype="float32",
                   seed=0, max_model_len=128, gpu_memory_utilization=0.3, enforce_eager=True,
                   tensor_parallel_size=2, distributed_executor_backend="mp",
                   profiler_config={{"profiler": "torch", "torch_profiler_dir": {out!r},
                                    "torch_profiler_record_shapes": True,
                                    "torch_profiler_dump_cuda_time_total": False,
                                    "torch_profiler_with_stack": False}})
    sp = SamplingParams(max_tokens=4, temperature=0.0, ignore_eos=True, detokenize=False)
    prompts = [{{"prompt_token_ids": list(range(10, 26))}} for _ in range(2)]
    llm.generate(prompts, sp)
    llm.start_profile()
    llm.generate(prompts, sp)
    llm.stop_profile()
"""


def test_vllm_cpu_tensor_parallel_2_one_trace_per_rank(tmp_path):
    """vLLM's CPU backend runs TP 2 on two cores (threads bound by hand: one NUMA node) and its profiler writes
    one trace per rank; its all-reduce is a CPU op with the tensor's shape: _C::shm_allreduce (its shared-memory
    communicator), or gloo's c10d::allreduce_ where that is unavailable (seen on one CI machine and not another)."""
    pytest.importorskip("vllm")
    prof = tmp_path / "prof"
    script = tmp_path / "tp2.py"
    script.write_text(TP2.format(root=str(ROOT), out=str(prof)))
    # vLLM's own engine here, not tracer's: its ZeroMQ sockets named in a short folder of the test's, then removed
    sockets = tempfile.mkdtemp(prefix="tracer-test-")
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", VLLM_CPU_OMP_THREADS_BIND="0|1",
               VLLM_WORKER_MULTIPROC_METHOD="spawn", VLLM_RPC_BASE_PATH=sockets)
    try:
        proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=1200)
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    traces = sorted(prof.glob("*.pt.trace.json.gz"))
    assert len(traces) == 2
    a = run_cli("analyze", prof, "--out", tmp_path / "an", "--json")
    assert a.returncode == 0, a.stderr
    summary = json.loads(a.stdout)
    ops = read_dataset(tmp_path / "an" / "ops")
    per_rank = {r["rank"]: r for r in summary["communication"]["per_rank"]}
    for t in traces:
        doc = raw(t)
        rank = doc["distributedInfo"]["rank"]
        cpu_ops = [e for e in doc["traceEvents"] if e.get("cat") == "cpu_op"]
        shm_path = any(e["name"] == "_C::shm_allreduce" for e in cpu_ops)
        name, prefix = ("_C::shm_allreduce", "_C::shm_") if shm_path else ("c10d::allreduce_", "c10d::")
        ar = [e for e in cpu_ops if e["name"] == name]
        mine = ops[(ops["rank"] == rank) & (ops["name"] == name)]
        assert len(mine) == len(ar) > 0
        comm = [e for e in cpu_ops if e["name"].startswith(prefix)]
        assert per_rank[rank]["comm_us"] == pytest.approx(union([(e["ts"], e["ts"] + e["dur"]) for e in comm]))
    coll = {c["collective"]: c for c in summary["communication"]["collectives"]}
    assert coll["all_reduce"]["on"] == "cpu" and coll["all_reduce"]["bytes_known_pct"] == 100
    assert coll["all_gather"]["calls"] > 0
    assert len(summary["communication"]["straggler_steps"]) >= 2
    # A rank's work is its shard: the GEMMs each rank ran (vLLM CPU's _C::onednn_mm, out [M, N] = in [M, K] x
    # W^T, read from the raw events) are the model's at TP 2, half of the whole model's, to vLLM's vocabulary
    # padding (50,304 rows, not 50,257: 0.03%); the model's all-reduces are the measured ones, call for call.
    from analysis.work.architecture import model_shape
    from analysis.steps.step_tokens import step_tokens
    from analysis.work.tensor_parallel import gemm_flops, shard_shape
    from tracer.api import load
    from workloads.models import model_config
    whole = model_shape(model_config("gpt2", 2).to_dict(), 4)
    for t in traces:
        measured = sum(2 * d[0][0] * d[0][1] * d[1][1] for d in
                       (e["args"]["Input Dims"] for e in raw(t)["traceEvents"]
                        if e.get("cat") == "cpu_op" and e["name"] == "_C::onednn_mm"))
        steps = step_tokens(load(t).ranges, None, 16)
        assert (steps["tokens"] > 0).sum() >= 4
        model = {tp: sum(gemm_flops(shard_shape(whole, tp), n, s) for n, s in zip(steps["tokens"], steps["seqs"]))
                 for tp in (1, 2)}
        assert measured == pytest.approx(model[2], rel=1e-3) and measured == pytest.approx(model[1] / 2, rel=1e-3)
    m = run_cli("analyze", prof, "--out", tmp_path / "model", "--json", "--model", "gpt2", "--layers", "2")
    assert m.returncode == 0, m.stderr
    summary = json.loads(m.stdout)
    assert all(r["tensor_parallel"]["tp"] == 2 and r["tensor_parallel"]["source"] == "world_size"
               for r in summary["ranks"])
    ar = {c["collective"]: c for c in summary["communication"]["collectives"]}["all_reduce"]
    assert (ar["predicted_calls"], ar["predicted_bytes"]) == (ar["calls"], ar["bytes"])
