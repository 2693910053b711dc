# Device call 9a (cold machine, ~6 min): the first vLLM chunk; gpt2 served by HF dynamic batching (max batch 8,
# max wait 50 ms) under `tracer load --rates`, then a profiled 10 s window of it under 16 requests/s.
source tests/device/setup.sh
source .carry/vllm1/load.sh > /tmp/load.log 2>&1; tail -1 /tmp/load.log
source tests/device/serve_common.sh
# 10 s: under torch.profiler one HF batch of 64 tokens took 4.5 s on the H200 (2 s held a single batch)
serve_sweep hf 8001 "HF dynamic batching" 10
