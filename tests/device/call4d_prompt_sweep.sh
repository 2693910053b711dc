# Device call 4d (optional, machine still held): prompt-length sweep for HF and vLLM.
source tests/device/setup.sh
source /root/vb/load.sh >/dev/null || exit 1
export VLLM_USE_FLASHINFER_SAMPLER=0
step timeout 400 $T sweep --backend hf,vllm --model gpt2 --batch 16 --prompt 32,64,128,256,512,1024 --output 64 --repeats 3 --dtype bfloat16 --out traces/gpu/sweep_prompt
snapshot call4d
