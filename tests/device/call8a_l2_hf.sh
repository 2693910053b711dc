# Device call 8a (H200, ~4 min): first vLLM chunk; `tracer calibrate` with the L2 curve; ncu's lts__t_bytes rate of
# the same L2-resident copy; HF gpt2 decode_b16 and llama-1b decode_b16_s128_o16 recorded with the profiled and
# unprofiled timing (fixtures), each analysed.
source tests/device/setup.sh
source .carry/vllm1/load.sh > /tmp/load.log 2>&1; tail -1 /tmp/load.log
mkdir -p traces/gpu/c8
step $T calibrate --out traces/gpu/c8/peaks.json
cp traces/gpu/c8/peaks.json $OUT/ 2>/dev/null
M=gpu__time_duration.sum,lts__t_bytes.sum,dram__bytes_read.sum,dram__bytes_write.sum,lts__t_sector_hit_rate.pct
step $TRACER_NCU --profile-from-start off --cache-control none --clock-control none --metrics $M --csv python3 tests/device/l2_copy_ncu.py
$TRACER_NCU --profile-from-start off --cache-control none --clock-control none --metrics $M --csv python3 tests/device/l2_copy_ncu.py > traces/gpu/c8/l2_copy_ncu.csv 2>&1
$TRACER_NCU --profile-from-start off --cache-control all --clock-control none --metrics $M --csv python3 tests/device/l2_copy_ncu.py > traces/gpu/c8/l2_copy_ncu_flushed.csv 2>&1
grep -v '^==' traces/gpu/c8/l2_copy_ncu.csv | head -40 | cut -c1-300 | grep -E "lts__t_bytes|duration" | head -6
step $T record --backend hf -w decode_b16 --model gpt2 --dtype bfloat16 --out traces/gpu/c8/h200_hf_gpt2_decode_b16.json.gz
step $T record --backend hf -w decode_b16_s128_o16 --model llama-1b --dtype bfloat16 --out traces/gpu/c8/h200_hf_llama-1b_decode_b16_s128_o16.json.gz
for f in traces/gpu/c8/*.meta.json; do python3 -c "import json,sys; f=json.load(open('$f'))['figures']; print('$f', 'profiled', f['decode_ms_per_token_mean'], 'unprofiled', f.get('unprofiled',{}).get('decode_ms_per_token_mean'), 'x', f.get('profiler_inflation'))"; done
snapshot call8a
