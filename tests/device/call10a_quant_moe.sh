# Device call 10a (the third vLLM chunk call, ~8 min): vLLM 0.26 CUDA graphs under torch.profiler for issue 25:
# llama-1b with quantization=fp8 (CUTLASS FP8 GEMMs, Inductor-fused activation quantization), a Mixtral-8x7B-shaped
# MoE cut to 2 layers in bf16 and in FP8 (fused_moe Triton kernels, topk_softmax and moe_align_block_size from
# _moe_C), then llama-1b with an FP8 KV cache if time is left. Each engine runs decode_b16_s128_o16 and
# prefill_b1_s512. Chunk: `source .carry/vllm3/load.sh` (or /root/vb/load.sh when already unpacked).
source tests/device/setup.sh
if [ -d /root/vb/site ]; then source /root/vb/load.sh > /tmp/load.log 2>&1; else source .carry/vllm3/load.sh > /tmp/load.log 2>&1; fi; tail -1 /tmp/load.log
export VLLM_USE_FLASHINFER_SAMPLER=0
mkdir -p traces/gpu/c10
t0=$(date +%s)
left() { echo $(( ${CALL_S:-580} - ($(date +%s) - t0) )); }
W=decode_b16_s128_o16,prefill_b1_s512
run() {   # tag, then record options
  local tag=$1; shift
  [ -f traces/gpu/c10/$tag.done ] && return
  [ $(left) -lt ${MIN_LEFT:-100} ] && { echo "skip $tag: $(left)s left"; return; }
  step timeout $(left) $T record --backend vllm -w $W --dtype bfloat16 --out traces/gpu/c10 "$@" && touch traces/gpu/c10/$tag.done
  nvidia-smi --query-gpu=memory.used --format=csv,noheader
  snapshot call10a
}
run llama_fp8 --model llama-1b --quantization fp8
run mixtral_bf16 --model mixtral-8x7b --layers 2
run mixtral_fp8 --model mixtral-8x7b --layers 2 --quantization fp8
W=decode_b16_s128_o16 run llama_fp8_kvfp8 --model llama-1b --quantization fp8 --kv-cache-dtype fp8
ls -la traces/gpu/c10
