# Device call 4c (machine still held after 4b): the eager fixture, then the batch and request-count sweeps for
# HF and vLLM (timing only, CUDA graphs for vLLM), snapshots after each step.
source tests/device/setup.sh
source /root/vb/load.sh >/dev/null || exit 1
export VLLM_USE_FLASHINFER_SAMPLER=0
mkdir -p traces/gpu/eager
step timeout 130 $T record --backend vllm -w decode_b16_s128_o16 --model gpt2 --dtype bfloat16 --enforce-eager --out traces/gpu/eager
for f in traces/gpu/eager/*.json.gz; do echo "$f: $($T check $f 2>&1 | tail -1)"; done
snapshot call4c
step timeout 200 $T sweep --backend hf,vllm --model gpt2 --batch 1,2,4,8,16,32,64 --prompt 128 --output 64 --repeats 3 --dtype bfloat16 --out traces/gpu/sweep_batch
snapshot call4c
step timeout 250 $T sweep --backend hf,vllm --model gpt2 --requests 10,50,100,200,500 --prompt 128 --output 64 --repeats 2 --dtype bfloat16 --out traces/gpu/sweep_requests
snapshot call4c
python3 tests/device/figures.py traces/gpu
