# Device call 12 (fresh machine after the four chunk calls): call 11's decode steps again under ncu after the fix
# of the captured step's position under async scheduling (prompt + 1 was prompt + 2), and the torch.profiler
# engines with the routing grouped by first-token step. Same outputs as call 11 (traces/gpu/c11).
source tests/device/setup.sh
source .carry/vllm4/load.sh > /tmp/load.log 2>&1; tail -1 /tmp/load.log
rm -f traces/gpu/c11/*decode*ncu* traces/gpu/c11/*.done
NCU_WORKLOADS=decode_b16_s128_o4 CALL_S=${CALL_S:-570} MIN_LEFT=${MIN_LEFT:-100} RUNS="ncu-bf16 ncu-fp8 torch-bf16 torch-fp8" bash tests/device/call11_moe_routing.sh
