# Device call 10 (#27, ~5-6 min on an H200 with vLLM; at most 9 min by its timeouts): figures you can repeat.
# Two independent `tracer record -w decode_b16 --backend hf,vllm --model gpt2 --dtype bfloat16` runs (torch profiler, default
# repeats: 5 unprofiled runs, 3 profiled, HF generate() 5 times), then tests/device/independent_timing.py, which
# times HF generate() and vLLM LLM.generate() on the same synthetic prompts with its own code (median of 5), and
# prints one table: tracer's unprofiled medians of both records against the independent timings, and both
# records' profiler inflations. Acceptance: medians within 5% of the independent timings and of each other;
# inflation within 10% across the records.
source tests/device/setup.sh
if [ -d /root/vb/site ]; then source /root/vb/load.sh > /tmp/load.log 2>&1; else source .carry/vllm2/load.sh > /tmp/load.log 2>&1; fi; tail -1 /tmp/load.log
export VLLM_USE_FLASHINFER_SAMPLER=0
D=traces/gpu/c10
rm -rf $D; mkdir -p $D
t_all=$(date +%s)
for r in r1 r2; do
  t0=$(date +%s)
  timeout ${RECORD_TIMEOUT:-200} $T record -w decode_b16 --backend hf,vllm --model gpt2 --dtype bfloat16 --out $D/$r \
    > $D/$r.stdout 2> $D/$r.stderr
  echo "=== record $r rc=$? $(( $(date +%s) - t0 ))s"
  cat $D/$r.stdout | grep -E "^(hf|vllm):|warning|Profiler inflation|without the profiler" | cut -c1-400
  grep -E "^tracer: (error|internal)" $D/$r.stderr
  snapshot call10
done
t0=$(date +%s)
timeout ${INDEP_TIMEOUT:-150} python3 tests/device/independent_timing.py --records $D/r1 $D/r2 --json $D/independent.json \
  2> $D/independent.stderr | tee $D/independent.txt
echo "=== independent rc=${PIPESTATUS[0]} $(( $(date +%s) - t0 ))s; whole call $(( $(date +%s) - t_all ))s"
tail -3 $D/independent.stderr | grep -iE "error|Traceback" 
snapshot call10
