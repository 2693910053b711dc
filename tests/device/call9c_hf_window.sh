# Device call 9c (cold machine, ~2 min, no vLLM chunk): a profiled 3 s window of HF dynamic batching under 16
# requests/s, held 6 s (96 requests). In call 9a the 10 s window outlasted its 7 s load and was never written;
# the window now closes when the server goes idle or stops, and writes a sidecar that `tracer analyze` models from.
source tests/device/setup.sh
source tests/device/serve_common.sh
$T serve --backend hf --model gpt2 --device cuda --dtype bfloat16 --port 8002 --sdpa-backend flash --profile 3 \
  --profile-out $S/hf_window.json.gz > $S/hf_profiled_server.log 2>&1 &
pid=$!
wait_up http://127.0.0.1:8002 300 $pid || tail -3 $S/hf_profiled_server.log
step timeout 120 $T load --url http://127.0.0.1:8002 --rate 16 $LOAD --min-duration-s 6 \
  --label "HF dynamic batching (profiled)" --out $S/hf_profiled_load
for i in $(seq 30); do [ -f $S/hf_window.json.gz ] && break; sleep 1; done
kill -TERM $pid; wait $pid; tail -3 $S/hf_profiled_server.log
ls -la $S
[ -f $S/hf_window.json.gz ] && step timeout 120 $T analyze $S/hf_window.json.gz --out $S/hf_window_analysis
snapshot hf_window
