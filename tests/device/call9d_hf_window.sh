# Device call 9d (cold machine, ~2 min, no vLLM chunk): a profiled window of HF dynamic batching under 16
# requests/s, opened 2 s after the first request (--profile-delay), so the load's 16 warm-up requests (two full
# batches sent at once) stay out of it; the load is held 10 s (160 requests). Call 9c's window, opened at the
# first request, held those two warm-up batches and one load request. 0.5 s: the window closes after the first
# batch that ends past it, one batch of 8 (0.7-0.8 s under the profiler, seen in a 2 s window of three batches:
# 7.7 MB gzipped, too big a fixture).
# .whl: nvtx, orjson, msgspec (pip download --no-deps --only-binary=:all: --python-version 3.12 ...).
source tests/device/setup.sh
source tests/device/serve_common.sh
$T serve --backend hf --model gpt2 --device cuda --dtype bfloat16 --port 8002 --sdpa-backend flash --profile 0.5 \
  --profile-delay 2 --profile-out $S/hf_window.json.gz > $S/hf_profiled_server.log 2>&1 &
pid=$!
wait_up http://127.0.0.1:8002 300 $pid || tail -3 $S/hf_profiled_server.log
step timeout 150 $T load --url http://127.0.0.1:8002 --rate 16 $LOAD --min-duration-s 10 \
  --label "HF dynamic batching (profiled)" --out $S/hf_profiled_load
for i in $(seq 30); do [ -f $S/hf_window.json.gz ] && break; sleep 1; done
kill -TERM $pid; wait $pid; tail -3 $S/hf_profiled_server.log
ls -la $S
[ -f $S/hf_window.json.gz ] && step timeout 120 $T analyze $S/hf_window.json.gz --out $S/hf_window_analysis
snapshot hf_window
