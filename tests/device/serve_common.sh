# Shared by the serve calls: one load shape for every server, a readiness wait.
S=traces/gpu/serve; mkdir -p $S
LOAD="--requests 32 --prompt 128 --output 64 --seed 0 --slo-ttft-ms 200 --slo-tpot-ms 50 --warmup-requests 16"
# HF's attention backend: torch's auto chose cuDNN on the H200, which plans every new (batch, KV length) once
# (tests/data/h200_serve_gpt2/README.md); flash has no plans to build. HF_SDPA=auto records what HF does by default.
HF_ARGS="--sdpa-backend ${HF_SDPA:-flash}"
# to 256/s: past HF's saturation (about 12/s, tests/data/h200_serve_gpt2) and, we expect, vLLM's. Each rate is held
# at least 6 s (--min-duration-s): 32 requests at 64/s had arrived in 0.5 s, one burst, before any queue formed.
RATES=${RATES:-1,2,4,8,16,32,64,128,256}
SWEEP="--min-duration-s ${MIN_S:-6}"
WINDOW_RATE=${WINDOW_RATE:-16}
# wait_up URL SECONDS PID: 0 once URL/health answers; 1 at once if the server process PID has exited (seen
# 2026-12-02: a server that died at import left the script waiting out its whole limit)
wait_up() { python3 - "$1" "$2" "$3" <<'PY'
import os, sys, time, urllib.request
deadline = time.time() + float(sys.argv[2])
while time.time() < deadline:
    try: urllib.request.urlopen(sys.argv[1] + "/health", timeout=2); sys.exit(0)
    except OSError: time.sleep(1)
    try: os.kill(int(sys.argv[3]), 0)
    except ProcessLookupError: print("server exited before answering"); sys.exit(1)
sys.exit(1)
PY
}
# serve_sweep BACKEND PORT LABEL WINDOW_S [PLOT_WITH]: a sweep over RATES, then a profiled window at WINDOW_RATE on a
# second server start (the window opens at the first running request), analysed.
serve_sweep() {
  local b=$1 port=$2 label=$3 window_s=$4 plot=${5:+--plot $5}
  local extra=$([ $b = hf ] && echo $HF_ARGS)
  $T serve --backend $b --model gpt2 --device cuda --dtype bfloat16 --port $port $extra > $S/${b}_server.log 2>&1 &
  local pid=$!
  wait_up http://127.0.0.1:$port 300 $pid || { tail -3 $S/${b}_server.log; return 1; }
  step timeout 330 $T load --url http://127.0.0.1:$port --rates $RATES $LOAD $SWEEP --label "$label" --out $S/$b $plot
  kill -TERM $pid; wait $pid; tail -2 $S/${b}_server.log; snapshot serve_$b
  $T serve --backend $b --model gpt2 --device cuda --dtype bfloat16 --port $((port+1)) $extra --profile $window_s --profile-out $S/${b}_window.json.gz > $S/${b}_profiled_server.log 2>&1 &
  pid=$!
  wait_up http://127.0.0.1:$((port+1)) 300 $pid && step timeout 60 $T load --url http://127.0.0.1:$((port+1)) --rate $WINDOW_RATE $LOAD --out $S/${b}_profiled_load
  for i in $(seq 60); do [ -f $S/${b}_window.json.gz ] && break; sleep 1; done
  kill -TERM $pid; wait $pid; tail -2 $S/${b}_profiled_server.log
  [ -f $S/${b}_window.json.gz ] && step timeout 90 $T analyze $S/${b}_window.json.gz --out $S/${b}_window_analysis
  snapshot serve_$b
}
