# Device call 7a: the first vLLM chunk only (7b must follow within 30 s). Checks the GPU and the tools.
source .carry/vllm1/load.sh 2>&1 | tail -1
nvidia-smi --query-gpu=name,driver_version,memory.used --format=csv,noheader
ncu --version | tail -1
