# Device call 14 (#27): tests/device/interleaved_timing.py, tracer's measured loops and the users' own calls
# (HF generate(), vLLM LLM.generate() with tracer's and with the independent script's engine settings) round by
# round in one process, with a CPU probe and /proc/stat per round. Then call13_admission.sh records|independent.
source tests/device/setup.sh
if [ -d /root/vb/site ]; then source /root/vb/load.sh > /tmp/load.log 2>&1; else source .carry/vllm4/load.sh > /tmp/load.log 2>&1; fi; tail -1 /tmp/load.log
export VLLM_USE_FLASHINFER_SAMPLER=0
mkdir -p traces/gpu/c14
t0=$(date +%s)
timeout ${INTERLEAVED_TIMEOUT:-500} python3 tests/device/interleaved_timing.py --rounds ${ROUNDS:-7} --json traces/gpu/c14/interleaved.json \
  2> traces/gpu/c14/interleaved.stderr | tee traces/gpu/c14/interleaved.txt
echo "=== interleaved rc=${PIPESTATUS[0]} $(( $(date +%s) - t0 ))s"
grep -E "Error|Traceback" traces/gpu/c14/interleaved.stderr | tail -3
nproc; cat /proc/loadavg
snapshot c14
