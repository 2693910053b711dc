# Device call 2c (same machine, vLLM already unpacked): vLLM timing-only records, sweeps, ncu.
source tests/device/setup.sh
source /root/vb/load.sh >/dev/null || exit 1
export VLLM_USE_FLASHINFER_SAMPLER=0
mkdir -p traces/gpu/none traces/gpu/ncu
step timeout 150 $T sweep --backend hf,vllm --model gpt2 --batch 1,2,4,8,16,32,64 --prompt 128 --output 64 --repeats 3 --dtype bfloat16 --out traces/gpu/sweep_batch --no-plots
step timeout 150 $T sweep --backend hf,vllm --model gpt2 --requests 10,50,100,200,500 --prompt 128 --output 64 --repeats 2 --dtype bfloat16 --out traces/gpu/sweep_requests --no-plots
step timeout 90 $T record --backend vllm -w decode_b16,prefill_b1_s512 --model llama-1b --dtype bfloat16 --profiler none --out traces/gpu/none
NCU_M=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,sm__ops_path_tensor_src_bf16_dst_fp32.sum,sm__inst_executed_pipe_tensor.sum,sm__sass_thread_inst_executed_op_ffma_pred_on.sum
for pat in "tracer@decode/" "tracer@decode" "decode/"; do
  echo "=== ncu gemm check with --nvtx-include $pat"
  ncu --profile-from-start off --nvtx --nvtx-include "$pat" --clock-control none --metrics $NCU_M --csv python3 tests/device/ncu_gemm_check.py 2>&1 | grep -vE "^==PROF==" | tail -8
  if ncu --profile-from-start off --nvtx --nvtx-include "$pat" --clock-control none --metrics gpu__time_duration.sum --csv python3 tests/device/ncu_gemm_check.py 2>&1 | grep -q gpu__time_duration; then
    export TRACER_NCU_NVTX_INCLUDE=$(echo "$pat" | sed "s/decode/{range}/"); echo "using $TRACER_NCU_NVTX_INCLUDE"; break; fi
done
for m in gpt2 llama-1b; do for w in decode_b16 prefill_b1_s512; do
  step timeout 150 $T record -w $w --model $m --profiler ncu --ncu-launch-count 500 --out traces/gpu/ncu/hf_${m}_${w}_ncu.ncu.csv
done; done
rm -f traces/gpu/ncu/*.ncu-rep
ls -la traces/gpu/* | head -40
python3 tests/device/figures.py traces/gpu
tar czf /tmp/call2c.tgz traces/gpu && split -b 15m -d /tmp/call2c.tgz $OUT/call2c.tgz.
