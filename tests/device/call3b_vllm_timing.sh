# Device call 3b (after 2a's chunk on a fresh machine): sweeps and timing-only (no profiler) records for HF vs vLLM.
source tests/device/setup.sh
if [ -d /root/vb/site ]; then source /root/vb/load.sh; else source .carry/vllm2/load.sh; fi >/dev/null || exit 1
export VLLM_USE_FLASHINFER_SAMPLER=0
mkdir -p traces/gpu/none
step timeout 150 $T sweep --backend hf,vllm --model gpt2 --batch 1,2,4,8,16,32,64 --prompt 128 --output 64 --repeats 3 --dtype bfloat16 --out traces/gpu/sweep_batch --no-plots; snapshot call3b
step timeout 150 $T sweep --backend hf,vllm --model gpt2 --requests 10,50,100,200,500 --prompt 128 --output 64 --repeats 2 --dtype bfloat16 --out traces/gpu/sweep_requests --no-plots; snapshot call3b
for m in gpt2 llama-1b; do
  step timeout 100 $T record --backend vllm -w decode_b16,prefill_b1_s512 --model $m --dtype bfloat16 --profiler none --out traces/gpu/none; snapshot call3b
  step timeout 100 $T record --backend vllm -w decode_b16,prefill_b1_s512 --model $m --dtype bfloat16 --profiler none --enforce-eager --out traces/gpu/none; snapshot call3b
done
python3 tests/device/figures.py traces/gpu
