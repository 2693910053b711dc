# Device call 7b (after 7a): the rest of the vLLM bundle, then the llama-1b vLLM CUDA-graph decode fixture (the
# first engine start compiles with torch.compile and Triton: it is also the warm-up for 7c/7d), analysed at once.
source tests/device/setup.sh
# not piped: a pipe would run source in a subshell and lose its exports
if [ -d /root/vb/site ]; then source /root/vb/load.sh > /tmp/load.log 2>&1; else source .carry/vllm2/load.sh .carry/vllm3 > /tmp/load.log 2>&1; fi; tail -1 /tmp/load.log
export VLLM_USE_FLASHINFER_SAMPLER=0
mkdir -p traces/gpu/c7
step timeout 500 $T record --backend vllm -w decode_b16_s128_o16 --model llama-1b --dtype bfloat16 --out traces/gpu/c7
for f in traces/gpu/c7/*.json.gz; do echo "$f: $($T check $f 2>&1 | tail -1)"; $T analyze $f --out ${f%.json.gz}_analysis 2>&1 | sed -n 3,8p; done
ls -la traces/gpu/c7
snapshot call7b
