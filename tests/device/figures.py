"""Print the headline figures of every sidecar in a folder (device calls end with this table)."""
import glob
import json
import sys

KEYS = ("ttft_ms", "decode_ms_per_token_mean", "output_tokens_per_s", "peak_allocated_bytes",
        "nvml_peak_memory_used_bytes", "kv_blocks_allocated", "kv_blocks_used_peak", "prefill_tokens_computed")
for f in sorted(glob.glob(f"{sys.argv[1]}/**/*.meta.json", recursive=True)):
    g = json.load(open(f))["figures"]
    print(f.split("/")[-1][:-10], {k: (round(v, 3) if isinstance(v, float) else v) for k, v in g.items() if k in KEYS})
