# Device call 26a (issue 26): a vLLM trace recorded WITH Python stacks (real execute_model frames, not the ones
# tests/unannotated.py synthesizes), then analysed as users have it: step annotations removed, no sidecar, --model.
# Prints, for the trace as recorded and as stripped: phases, steps, kernel time and unmodeled share. ~5 min.
# Run: bash tests/device/call26a_vllm_stacks.sh   (after the vLLM bundle of call7a/7b is in place)
source tests/device/setup.sh
if [ -d /root/vb/site ]; then source /root/vb/load.sh > /tmp/load.log 2>&1; else source .carry/vllm2/load.sh .carry/vllm3 > /tmp/load.log 2>&1; fi; tail -1 /tmp/load.log
export VLLM_USE_FLASHINFER_SAMPLER=0 TRACER_VLLM_WITH_STACK=1
mkdir -p traces/gpu/c26a
step timeout 500 $T record --backend vllm -w decode_b16_s128_o16 --model gpt2 --dtype bfloat16 --out traces/gpu/c26a/vllm_gpt2_stacks.json.gz
python3 - <<'PY'
import sys
sys.path.insert(0, ".")
import tracer
from tests.unannotated import strip_vllm_steps
src = "traces/gpu/c26a/vllm_gpt2_stacks.json.gz"
dst = strip_vllm_steps(src, "traces/gpu/c26a/vllm_gpt2_stacks_no_steps.json.gz")
for path, kw in ((src, {}), (str(dst), {"model": "gpt2"})):
    t = tracer.load(path)
    a = t.analyze(**kw)
    frames = int((t.ranges["source"] == "vllm_frame").sum())
    print(path, "execute_model frames read:", frames, "unmodeled %:", round(a.summary["totals"]["unmodeled_pct"], 2))
    for p in a.summary["phases"]:
        print(f"  {p['phase']}: steps {p['steps']} kernel_us {p['kernel_us']:.1f} unmodeled {p['unmodeled_pct']:.2f}%")
    for n in a.notices:
        print("  notice:", n)
PY
ls -la traces/gpu/c26a
snapshot call26a
