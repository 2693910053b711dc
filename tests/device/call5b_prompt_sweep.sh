# Device call 5b (machine still held): prompt-length sweep for HF and vLLM, up to gpt2's 1024 positions.
source tests/device/setup.sh
source /root/vb/load.sh >/dev/null || exit 1
export VLLM_USE_FLASHINFER_SAMPLER=0
step $T sweep --backend hf,vllm --model gpt2 --batch 16 --prompt 32,64,128,256,512,1024 --output 64 --repeats 3 --dtype bfloat16 --out traces/gpu/sweep_prompt_refused
step timeout 450 $T sweep --backend hf,vllm --model gpt2 --batch 16 --prompt 32,64,128,256,512,960 --output 64 --repeats 3 --dtype bfloat16 --out traces/gpu/sweep_prompt
snapshot call5b
