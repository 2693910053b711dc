# Device call 5a (after `source .carry/vllm1/load.sh` on a fresh machine): the vLLM CUDA-graph fixture and the
# HF decode fixture again, now with NVML counter tracks placed by the Unix clock (baseTimeNanoseconds).
source tests/device/setup.sh
if [ -d /root/vb/site ]; then source /root/vb/load.sh; else source .carry/vllm2/load.sh; fi >/dev/null || exit 1
export VLLM_USE_FLASHINFER_SAMPLER=0
step $T record -w decode_b16 --model gpt2 --out traces/gpu/hf_gpt2_decode_b16.json.gz
step timeout 520 $T record --backend vllm -w decode_b16 --model gpt2 --dtype bfloat16 --out traces/gpu/vllm_gpt2_decode_b16_graphs.json.gz
for f in traces/gpu/*.json.gz; do $T check $f; done
python3 - <<'PY'
import gzip, orjson, glob
for f in sorted(glob.glob("traces/gpu/*.json.gz")):
    ev = orjson.loads(gzip.decompress(open(f, "rb").read()))["traceEvents"]
    c = [e["ts"] for e in ev if e.get("ph") == "C"]
    x = [(e["ts"], e["ts"] + e["dur"]) for e in ev if e.get("cat") == "tracer_phase"]
    print(f, "counters", len(c), "span", (min(c) - min(a for a, _ in x)) / 1e3 if c else None, "ms before first phase;",
          (max(c) - max(b for _, b in x)) / 1e3 if c else None, "ms after last")
PY
snapshot call5a
