# Device call 4b (after 4a): the second vLLM chunk, then the CUDA-graph fixture. The first engine start on a
# fresh machine compiles (torch.compile, Triton) for minutes: it doubles as the warm-up for 4c.
source tests/device/setup.sh
if [ -d /root/vb/site ]; then source /root/vb/load.sh; else source .carry/vllm2/load.sh; fi >/dev/null || exit 1
export VLLM_USE_FLASHINFER_SAMPLER=0
mkdir -p traces/gpu/graphs
step timeout 540 $T record --backend vllm -w decode_b16 --model gpt2 --dtype bfloat16 --out traces/gpu/graphs
for f in traces/gpu/graphs/*.json.gz; do echo "$f: $($T check $f 2>&1 | tail -1)"; done
snapshot call4b
