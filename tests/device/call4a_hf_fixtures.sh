# Device call 4a (session 2): the HF fixtures again, now written with the Perfetto layout (phase track, overlap
# lanes), and the first vLLM chunk (call 4b must follow within 30 s).
source tests/device/setup.sh
source .carry/vllm1/load.sh >/dev/null 2>&1 || true
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for w in decode_b16 decode_b16_s128_o16 prefill_b1_s512; do
  step $T record -w $w --model gpt2 --out traces/gpu/hf_gpt2_$w.json.gz
done
step $T record -w prefill_b1_s512 --model llama-1b --out traces/gpu/hf_llama-1b_prefill_b1_s512.json.gz
for f in traces/gpu/*.json.gz; do echo "$f: $($T check $f 2>&1 | tail -1)"; done
snapshot call4a
