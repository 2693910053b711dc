# Device call 2a: the first vLLM chunk only (the machine must then get call 2b within 30 s).
source .carry/vllm1/load.sh
