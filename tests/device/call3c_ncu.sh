# Device call 3c: Nsight Compute counters for the HF phases (one decode step's kernels, the whole prefill).
source tests/device/setup.sh
mkdir -p traces/gpu/ncu
for m in gpt2 llama-1b; do
  n=200; [ $m = llama-1b ] && n=320
  step timeout 170 $T record -w prefill_b1_s512 --model $m --profiler ncu --ncu-launch-count $n --out traces/gpu/ncu/hf_${m}_prefill_b1_s512_ncu.ncu.csv
  rm -f traces/gpu/ncu/*.ncu-rep; snapshot call3c
  step timeout 170 $T record -w decode_b16 --model $m --profiler ncu --ncu-launch-count $n --out traces/gpu/ncu/hf_${m}_decode_b16_ncu.ncu.csv
  rm -f traces/gpu/ncu/*.ncu-rep; snapshot call3c
done
ls -la traces/gpu/ncu
