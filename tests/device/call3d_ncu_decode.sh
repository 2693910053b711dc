# Device call 3d: which NVTX filter reaches the kernels of decode steps (nested in `decode`), then gpt2 decode.
source tests/device/setup.sh
mkdir -p traces/gpu/ncu
for pat in "tracer@decode/decode_step/" "tracer@decode/*" "tracer@decode/"; do
  export TRACER_NCU_NVTX_INCLUDE=$(echo "$pat" | sed "s/decode\//{range}\//")
  echo "=== pattern $pat -> $TRACER_NCU_NVTX_INCLUDE"
  rm -rf /tmp/p; mkdir -p /tmp/p
  s=$(date +%s); timeout 80 $T record -w decode_b16_s128_o3 --warmup 0 --model gpt2 --profiler ncu --ncu-launch-count 20 --out /tmp/p/x.ncu.csv 2>&1 | tail -2; echo "rc=$? $(( $(date +%s)-s ))s"
  if [ -s /tmp/p/x.ncu.csv ]; then good=$TRACER_NCU_NVTX_INCLUDE; head -c 600 /tmp/p/x.ncu.csv; break; fi
done
if [ -n "$good" ]; then export TRACER_NCU_NVTX_INCLUDE=$good; echo "using $good"
  step timeout 200 $T record -w decode_b16_s128_o4 --model gpt2 --profiler ncu --ncu-launch-count 200 --out traces/gpu/ncu/hf_gpt2_decode_b16_s128_o4_ncu.ncu.csv
  rm -f traces/gpu/ncu/*.ncu-rep; snapshot call3d
fi
