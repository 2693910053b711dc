# Device call 13 (#27, after the batch admission change): the acceptance of call 10 again, in two calls while the
# machine is held. `records`: two `tracer record -w decode_b16 --backend hf,vllm --model $MODEL --dtype bfloat16`
# (5 unprofiled runs, 3 profiled, HF generate() 5 times), each ~2 min with the engine start. `independent`:
# tests/device/independent_timing.py (HF generate(); vLLM LLM.generate() with the engine core in-process, where the
# whole batch is prefilled in one step, and in its own process, vLLM's default), then the table against both records.
# `all`: both in one call. BACKENDS=hf INDEP_BACKENDS=hf: HF alone (no vLLM bundle needed). MODEL (gpt2) picks the
# preset, RECORDS ("r1 r2") the records this call makes, D (traces/gpu/c13) the folder.
source tests/device/setup.sh
if [ -d /root/vb/site ]; then source /root/vb/load.sh > /tmp/load.log 2>&1; else source .carry/vllm4/load.sh > /tmp/load.log 2>&1; fi; tail -1 /tmp/load.log
export VLLM_USE_FLASHINFER_SAMPLER=0
D=${D:-traces/gpu/c13}
MODEL=${MODEL:-gpt2}
mkdir -p $D
# the sidecars, logs and tables only: a Llama-8B record's traces would not fit in what comes back from $OUT
sidecar_snapshot() { find $D -name '*.meta.json' -o -name '*.std*' -o -name 'independent*' | tar czf $OUT/$1.tgz -T -; }
t_all=$(date +%s)
if [ "$1" = records ] || [ "$1" = all ]; then
  for r in ${RECORDS:-r1 r2}; do
    t0=$(date +%s)
    rm -rf $D/$r
    timeout ${RECORD_TIMEOUT:-270} $T record -w decode_b16 --backend ${BACKENDS:-hf,vllm} --model $MODEL --dtype bfloat16 --out $D/$r \
      > $D/$r.stdout 2> $D/$r.stderr
    echo "=== record $r rc=$? $(( $(date +%s) - t0 ))s"
    grep -E "^(hf|vllm):|warning|Profiler inflation|without the profiler" $D/$r.stdout | cut -c1-400
    grep -E "^tracer: (error|internal)" $D/$r.stderr
    sidecar_snapshot c13$r
  done
fi
if [ "$1" != records ]; then
  timeout ${INDEP_TIMEOUT:-400} python3 tests/device/independent_timing.py --model $MODEL --backends ${INDEP_BACKENDS:-hf,vllm,vllm-mp} --records $D/r1 $D/r2 --json $D/independent.json \
    2> $D/independent.stderr | tee $D/independent.txt
  echo "=== independent rc=${PIPESTATUS[0]}"
  tail -3 $D/independent.stderr | grep -iE "error|Traceback"
  sidecar_snapshot c13ind
fi
echo "=== call $(( $(date +%s) - t_all ))s"
