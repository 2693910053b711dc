# Device call 7c: vLLM (CUDA graphs) under Nsight Compute, one decode_b16 step and prefill_b1_s512, for MODELS
# (default gpt2), each read alone against the architecture model.
source tests/device/setup.sh
source /root/vb/load.sh > /tmp/load.log 2>&1; tail -1 /tmp/load.log
export VLLM_USE_FLASHINFER_SAMPLER=0
mkdir -p traces/gpu/ncu7
for m in ${MODELS:-gpt2}; do
  for w in decode_b16_s128_o4 prefill_b1_s512; do
    step timeout ${NCU_TIMEOUT:-260} $T record --backend vllm --profiler ncu -w $w --model $m --dtype bfloat16 --out traces/gpu/ncu7/vllm_${m}_${w}_ncu.ncu.csv
    f=traces/gpu/ncu7/vllm_${m}_${w}_ncu.ncu.csv
    [ -f $f ] && gzip -kf $f && $T analyze $f --out traces/gpu/ncu7/vllm_${m}_${w}_analysis 2>&1 | grep -A8 "Nsight\|unmodeled;"
  done
done
rm -f traces/gpu/ncu7/*.ncu-rep
snapshot call7c_${MODELS:-gpt2}
