# Device call 2b: vLLM 0.26.0 recordings under its torch profiler, eager and CUDA graphs, gpt2 and llama-1b.
source tests/device/setup.sh
if [ -d /root/vb/site ]; then source /root/vb/load.sh; else source .carry/vllm2/load.sh; fi || exit 1
export VLLM_USE_FLASHINFER_SAMPLER=0
for m in gpt2 llama-1b; do
  extra=""; [ $m = gpt2 ] && extra=",decode_b16_s128_o16"
  step timeout 280 $T record --backend vllm -w decode_b16,prefill_b1_s512$extra --model $m --dtype bfloat16 --enforce-eager --out traces/gpu
  step timeout 200 $T record --backend vllm -w decode_b16,prefill_b1_s512 --model $m --dtype bfloat16 --out traces/gpu
done
ls -la traces/gpu
python3 tests/device/figures.py traces/gpu
tar czf /tmp/call2.tgz traces/gpu && split -b 15m -d /tmp/call2.tgz $OUT/call2.tgz.
