# Device calls 10b/10c (warm machine, after 10a): vLLM CUDA graphs under Nsight Compute for issue 25, one decode_b16
# step and prefill_b1_s512 each (graph nodes profiled; graphs captured for the measured step's token count only):
# Mixtral-8x7B-shaped (2 layers) in FP8 and bf16, llama-1b cut to 4 layers in FP8. Runs already done are skipped,
# so the same script continues in the next call. RUNS picks and orders them.
source tests/device/setup.sh
source /root/vb/load.sh > /tmp/load.log 2>&1; tail -1 /tmp/load.log
export VLLM_USE_FLASHINFER_SAMPLER=0
mkdir -p traces/gpu/c10n
t0=$(date +%s)
left() { echo $(( ${CALL_S:-580} - ($(date +%s) - t0) )); }
for r in ${RUNS:-mixtral-fp8 mixtral-bf16 llama-fp8}; do
  case $r in
    mixtral-fp8) opts="--model mixtral-8x7b --layers 2 --quantization fp8"; m=mixtral-8x7b_L2_fp8 ;;
    mixtral-bf16) opts="--model mixtral-8x7b --layers 2"; m=mixtral-8x7b_L2 ;;
    llama-fp8) opts="--model llama-1b --layers 4 --quantization fp8"; m=llama-1b_L4_fp8 ;;
  esac
  for w in decode_b16_s128_o4 prefill_b1_s512; do
    f=traces/gpu/c10n/h200_vllm_${m}_${w}_graphs_ncu.ncu.csv
    [ -f $f.gz ] && continue
    [ $(left) -lt ${MIN_LEFT:-150} ] && { echo "skip $m $w: $(left)s left"; continue; }
    step timeout $(left) $T record --backend vllm --profiler ncu -w $w $opts --dtype bfloat16 --out $f
    [ -f $f ] && gzip -f $f
    rm -f traces/gpu/c10n/*.ncu-rep
    snapshot call10b
  done
done
ls -la traces/gpu/c10n
