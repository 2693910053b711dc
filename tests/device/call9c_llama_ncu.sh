# Device calls 9c/9d (warm machine): llama-1b vLLM CUDA graphs under ncu, one decode_b16 step, then
# prefill_b1_s512 if this call has time left (each run: engine start and compile, then the graph nodes
# profiled; graphs captured only for the measured step's token count). WORKLOADS picks the runs.
source tests/device/setup.sh
source /root/vb/load.sh > /tmp/load.log 2>&1; tail -1 /tmp/load.log
export VLLM_USE_FLASHINFER_SAMPLER=0
mkdir -p traces/gpu/c9
t0=$(date +%s)
for w in ${WORKLOADS:-decode_b16_s128_o4 prefill_b1_s512}; do
  left=$(( ${CALL_S:-585} - ($(date +%s) - t0) ))
  [ $left -lt 240 ] && { echo "skip $w: ${left}s left"; continue; }
  f=traces/gpu/c9/h200_vllm_llama-1b_${w}_graphs_ncu.ncu.csv
  [ -f $f ] && continue
  step timeout $left $T record --backend vllm --profiler ncu -w $w --model llama-1b --dtype bfloat16 --out $f
  [ -f $f ] && gzip -kf $f && $T analyze $f.gz --out ${f%.ncu.csv}_analysis 2>&1 | grep -A9 "Nsight\|unmodeled;"
  rm -f traces/gpu/c9/*.ncu-rep
  snapshot call9c
done
