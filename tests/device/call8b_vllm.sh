# Device call 8b (right after 8a, ~9 min): the second vLLM chunk; gpt2 vLLM CUDA graphs decode_b16 recorded under
# torch.profiler with unprofiled timing (also the compile warm-up), then one decode_b16 step and prefill_b1_s512
# under ncu (graph nodes profiled; graphs captured for the measured step's token count only), each read alone.
source tests/device/setup.sh
if [ -d /root/vb/site ]; then source /root/vb/load.sh > /tmp/load.log 2>&1; else source .carry/vllm2/load.sh > /tmp/load.log 2>&1; fi; tail -1 /tmp/load.log
export VLLM_USE_FLASHINFER_SAMPLER=0
mkdir -p traces/gpu/c8
for m in ${MODELS:-gpt2}; do
  o=$([ $m = gpt2 ] && echo decode_b16 || echo decode_b16_s128_o16)
  step timeout 400 $T record --backend vllm -w $o --model $m --dtype bfloat16 --out traces/gpu/c8/h200_vllm_${m}_${o}_graphs.json.gz
  snapshot call8b_$m
  for w in decode_b16_s128_o4 prefill_b1_s512; do
    f=traces/gpu/c8/h200_vllm_${m}_${w}_graphs_ncu.ncu.csv
    step timeout ${NCU_TIMEOUT:-300} $T record --backend vllm --profiler ncu -w $w --model $m --dtype bfloat16 --out $f
    [ -f $f ] && gzip -kf $f && $T analyze $f.gz --out ${f%.ncu.csv}_analysis 2>&1 | grep -A9 "Nsight\|unmodeled;"
    rm -f traces/gpu/c8/*.ncu-rep
    snapshot call8b_$m
  done
done
