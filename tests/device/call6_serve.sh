# Device call 6 (~3.5-4 min): gpt2 served on the H100 by HF dynamic batching (max batch 8, max wait 50 ms) and by
# vLLM's own API server (CUDA graphs), each loaded by `tracer load --rates` from low to past saturation.
# Outputs under traces/gpu/serve/{hf,vllm}: sweep.parquet/csv/json, rate_*/requests.*, load.png (vllm's holds
# both servers), sustainable.json (highest rate with p99 TTFT <= 200 ms and p99 TPOT <= 50 ms, no errors).
# hf_window.json.gz + hf_window_analysis/: a 2 s torch.profiler window of the HF server at 32 requests/s.
# vLLM's window is not recorded (its /start_profile needs --profiler-config at start; not wired yet).
# aiohttp comes with vLLM's dependencies. uvicorn does not: seen 2026-12-01 on the H200, vLLM's API server failed to
# start ("No module named 'uvicorn'"); download its wheel into .whl first (pip download --no-deps ... uvicorn; h11,
# click and anyio are on the machine). Run right after a vLLM record call, on a warm machine (engine caches).
source tests/device/setup.sh
source /root/vb/load.sh >/dev/null || exit 1
export VLLM_USE_FLASHINFER_SAMPLER=0
S=traces/gpu/serve; mkdir -p $S
LOAD="--requests 64 --prompt 128 --output 64 --seed 0 --slo-ttft-ms 200 --slo-tpot-ms 50"
RATES=4,8,16,32,64,128,256
wait_up() { python3 - "$1" "$2" <<'PY'
import sys, time, urllib.request
deadline = time.time() + float(sys.argv[2])
while time.time() < deadline:
    try: urllib.request.urlopen(sys.argv[1] + "/health", timeout=2); sys.exit(0)
    except OSError: time.sleep(1)
sys.exit(1)
PY
}
$T serve --backend hf --model gpt2 --device cuda --dtype bfloat16 --port 8001 --max-batch 8 --max-wait-ms 50 > $S/hf_server.log 2>&1 &
HF=$!
wait_up http://127.0.0.1:8001 120 && step timeout 100 $T load --url http://127.0.0.1:8001 --rates $RATES $LOAD --label "HF dynamic batching" --out $S/hf
kill -TERM $HF; wait $HF; snapshot call6a
# a 2 s profiled window of the HF server under 32 requests/s, analysed
$T serve --backend hf --model gpt2 --device cuda --dtype bfloat16 --port 8003 --profile 2 --profile-out $S/hf_window.json.gz > $S/hf_profiled_server.log 2>&1 &
HP=$!
wait_up http://127.0.0.1:8003 120 && step timeout 40 $T load --url http://127.0.0.1:8003 --rate 32 $LOAD --out $S/hf_profiled_load
sleep 3; kill -TERM $HP; wait $HP
[ -f $S/hf_window.json.gz ] && step timeout 60 $T analyze $S/hf_window.json.gz --out $S/hf_window_analysis
$T serve --backend vllm --model gpt2 --device cuda --dtype bfloat16 --port 8002 > $S/vllm_server.log 2>&1 &
VL=$!
wait_up http://127.0.0.1:8002 150 && step timeout 90 $T load --url http://127.0.0.1:8002 --rates $RATES $LOAD --label "vLLM (CUDA graphs)" --out $S/vllm --plot $S/hf
kill -TERM $VL; wait $VL
python3 - <<'PY'
import json, pandas as pd
from analysis.load_plots import sustainable_rate
out = {}
for name in ("hf", "vllm"):
    try:
        out[name] = sustainable_rate(pd.read_parquet(f"traces/gpu/serve/{name}/sweep.parquet"), 200, 50)
    except FileNotFoundError:
        out[name] = "missing"
print("sustainable rate (p99 TTFT <= 200 ms, p99 TPOT <= 50 ms):", out)
json.dump(out, open("traces/gpu/serve/sustainable.json", "w"))
PY
snapshot call6
