# Device calls 11 (warm machine, vLLM bundle unpacked): issue 25's MoE FLOPs against ncu with the routing recorded.
# vLLM 0.26 CUDA graphs, Mixtral-8x7B-shaped (2 layers) in bf16 and FP8, `--moe-routing` (vLLM returns each token's
# experts), under Nsight Compute (one decode_b16 step and one prefill_b1_s512 step, graph nodes profiled), then under
# torch.profiler (decode_b16_s128_o16 and prefill_b1_s512 in one engine). Runs already done are skipped, so the same
# script continues in the next call; RUNS picks and orders them.
source tests/device/setup.sh
source /root/vb/load.sh > /tmp/load.log 2>&1; tail -1 /tmp/load.log
export VLLM_USE_FLASHINFER_SAMPLER=0
D=traces/gpu/c11; mkdir -p $D
t0=$(date +%s)
left() { echo $(( ${CALL_S:-580} - ($(date +%s) - t0) )); }
for r in ${RUNS:-ncu-bf16 ncu-fp8 torch-bf16 torch-fp8}; do
  case $r in
    *-bf16) opts="--model mixtral-8x7b --layers 2"; m=mixtral-8x7b_L2 ;;
    *-fp8) opts="--model mixtral-8x7b --layers 2 --quantization fp8"; m=mixtral-8x7b_L2_fp8 ;;
  esac
  if [ ${r%%-*} = ncu ]; then
    for w in ${NCU_WORKLOADS:-decode_b16_s128_o4 prefill_b1_s512}; do
      f=$D/h200_vllm_${m}_routed_${w}_graphs_ncu.ncu.csv
      [ -f $f.gz ] && continue
      [ $(left) -lt ${MIN_LEFT:-150} ] && { echo "skip $m $w: $(left)s left"; continue; }
      step timeout $(left) $T record --backend vllm --profiler ncu -w $w $opts --moe-routing --dtype bfloat16 --out $f
      [ -f $f ] && gzip -f $f
      rm -f $D/*.ncu-rep
      snapshot call11
    done
  else
    [ -f $D/$r.done ] && continue
    [ $(left) -lt ${MIN_LEFT:-150} ] && { echo "skip $r: $(left)s left"; continue; }
    step timeout $(left) $T record --backend vllm -w decode_b16_s128_o16,prefill_b1_s512 $opts --moe-routing \
      --dtype bfloat16 --out $D/torch_$m && touch $D/$r.done
    snapshot call11
  fi
done
ls -la $D $D/torch_* 2>/dev/null | head -40
