# Device call 9b (right after 9a, ~7 min): the second vLLM chunk; gpt2 served by vLLM's own API server (CUDA
# graphs), same load; both servers on one plot; the sustainable rate of each under p99 TTFT <= 200 ms and
# p99 TPOT <= 50 ms.
# The API server needs what the offline bundle lacks. Seen on the H200: `No module named 'uvicorn'` (2026-12-01),
# then `No module named 'jmespath'` (2026-12-02, model_hosting_container_standards). The Requires-Dist closure of
# the bundle's wheels against the device's packages (KINDS.md) names these, all pure Python; download them into
# .whl before this call: pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp
#   --platform manylinux_2_28_x86_64 -d .whl uvicorn jmespath supervisor dnspython mcp-types==2.3.0 pyjwt sse-starlette
source tests/device/setup.sh
source .carry/vllm2/load.sh > /tmp/load.log 2>&1; tail -1 /tmp/load.log
export VLLM_USE_FLASHINFER_SAMPLER=0
python3 -c "import vllm.entrypoints.openai.api_server" 2>&1 | tail -1
source tests/device/serve_common.sh
serve_sweep vllm 8011 "vLLM (CUDA graphs)" 2 $S/hf
python3 - <<'PY'
import json, pandas as pd
from analysis.reports.load_plots import sustainable_rate
out = {}
for name in ("hf", "vllm"):
    try:
        df = pd.read_parquet(f"traces/gpu/serve/{name}/sweep.parquet")
    except FileNotFoundError:
        out[name] = "missing"
        continue
    top = df.loc[df.offered_rate_per_s.idxmax()]
    out[name] = {"sustainable_rate_per_s": sustainable_rate(df, 200, 50),
                 "highest_rate_tested_per_s": float(top.offered_rate_per_s),
                 "achieved_rate_at_highest_per_s": float(top.achieved_rate_per_s),
                 "send_lag_ms_p99_at_highest": float(top.send_lag_ms_p99)}
print("sustainable rate (p99 TTFT <= 200 ms, p99 TPOT <= 50 ms):", out)
json.dump(out, open("traces/gpu/serve/sustainable.json", "w"), indent=1)
PY
snapshot serve_done
