# Device call 1: HF recordings (torch.profiler and none), nsys, calibration, the large benchmark trace.
source tests/device/setup.sh
source .carry/vllm1/load.sh >/dev/null 2>&1 || true   # first vLLM chunk, for call 2
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
step $T calibrate --out traces/gpu/h100_peaks.json
for m in gpt2 llama-1b; do for w in decode_b16 prefill_b1_s512; do for p in torch none; do
  step $T record -w $w --model $m --profiler $p --out traces/gpu/hf_${m}_${w}_${p}.json.gz
done; done; done
step $T record -w decode_b16_s128_o16 --model gpt2 --out traces/gpu/hf_gpt2_decode_b16_s128_o16_torch.json.gz
step $T record -w decode_b16_s128_o16 --model gpt2 --profiler nsys --out traces/gpu/hf_gpt2_decode_b16_s128_o16_nsys.nsys-rep
step $T record -w decode_b16 --model gpt2 --profiler nsys --out traces/gpu/hf_gpt2_decode_b16_nsys.nsys-rep
step $T record -w decode_b8_s128_o640 --model llama-1b --out /tmp/big/hf_llama-1b_decode_b8_s128_o640_torch.json.gz
ls -la traces/gpu /tmp/big
python3 - <<'PY'
import json, glob
for f in sorted(glob.glob("traces/gpu/*.meta.json")):
    d = json.load(open(f)); g = d["figures"]
    print(f.split("/")[-1][:-10], {k: (round(v, 3) if isinstance(v, float) else v) for k, v in g.items()
          if k in ("ttft_ms", "decode_ms_per_token_mean", "output_tokens_per_s", "peak_allocated_bytes", "nvml_peak_memory_used_bytes")})
PY
tar czf /tmp/call1.tgz --exclude="*.nsys-rep" traces/gpu && split -b 15m -d /tmp/call1.tgz $OUT/call1.tgz.
(cd /tmp/big && gunzip -c *.json.gz | wc -c && gunzip -c *.json.gz | xz -6 -T16 > big.json.xz && ls -la && split -b 15m -d big.json.xz $OUT/big.json.xz.)
ls -la $OUT
