"""A transformer's shape, read from its Hugging Face config (a plain dict: the sidecar keeps it, `--model` gives it),
as much as the work model needs: sizes of every layer operation, not weights.

Families: GPT-2 and OPT (LayerNorm, learned positions, biased linears, plain MLP), the Llama family (Llama,
Qwen2, Mistral: RMSNorm, rotary positions, grouped KV heads, gated MLP) and its Mixture-of-Experts kin (Mixtral,
Qwen2-MoE and Qwen3-MoE: every MLP replaced by a router and E experts of a gated MLP, k routed a token, Qwen2-MoE
adding a shared expert behind a sigmoid gate). A config of another kind gives None: its kernels then keep only the
work their ops' shapes give.

Quantization (`Quantization`) changes the bytes of the projections' weights and input activations and the tensor
precision they run at, never their FLOPs; the LM head, the MoE router and the norms stay in the model's dtype, as
vLLM runs them. An FP8 KV cache halves the cache's bytes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

ELEM_BYTES = {"bfloat16": 2, "float16": 2, "half": 2, "float32": 4, "float": 4, "float64": 8, "fp8": 1}
_LLAMA_LIKE = ("llama", "qwen2", "mistral", "qwen3", "gemma", "phi3")
_MOE = ("mixtral", "qwen2_moe", "qwen3_moe")


@dataclass(frozen=True)
class Quantization:
    """How a model's projections are stored and computed. bytes are per weight / activation element, scales
    included; `precision` is the tensor-core path the GEMMs run on (the roof they are held against)."""
    method: str = ""              # "" (none), fp8, fp8_block, int8, w4a16
    weight_bytes: float = 0.0     # 0: the model's element size
    act_bytes: float = 0.0        # GEMM input activations; 0: the model's element size
    precision: str = ""           # fp8, int8; "": the model's dtype
    source: str = ""              # where it was learnt: option, sidecar, config or kernels


NO_QUANTIZATION = Quantization()
# per-group scales: block FP8 (DeepSeek, 128x128 weight blocks, 1x128 activation groups), INT4 with a 16-bit scale
# and a 4-bit zero per group of 128 weights (AWQ, GPTQ, compressed-tensors W4A16)
_QUANT_FORMS = {
    "fp8": dict(weight_bytes=1.0, act_bytes=1.0, precision="fp8"),
    "fp8_block": dict(weight_bytes=1.0 + 4 / (128 * 128), act_bytes=1.0 + 4 / 128, precision="fp8"),
    "int8": dict(weight_bytes=1.0, act_bytes=1.0, precision="int8"),
    "w4a16": dict(weight_bytes=0.5 + 2.5 / 128, act_bytes=0.0, precision=""),
}
# method names as vLLM, transformers and the checkpoints spell them
_METHOD_ALIASES = {"fp8": "fp8", "fbgemm_fp8": "fp8", "fp8_per_tensor": "fp8", "fp8_per_channel": "fp8",
                   "modelopt": "fp8", "ptpc_fp8": "fp8", "fp8_per_block": "fp8_block", "fp8_block": "fp8_block",
                   "int8": "int8", "w8a8": "int8", "int8_per_channel_weight_only": "int8", "experts_int8": "int8",
                   "awq": "w4a16", "awq_marlin": "w4a16", "gptq": "w4a16", "gptq_marlin": "w4a16",
                   "auto_awq": "w4a16", "auto_gptq": "w4a16", "marlin": "w4a16", "machete": "w4a16",
                   "moe_wna16": "w4a16", "w4a16": "w4a16"}


def quantization_named(method: str | None, source: str) -> Quantization | None:
    """The form of a quantization method's name, None for one this model does not know."""
    if not method:
        return NO_QUANTIZATION
    form = _METHOD_ALIASES.get(str(method).lower().replace("-", "_"))
    return Quantization(form, source=source, **_QUANT_FORMS[form]) if form else None


def known_quantization_methods() -> list[str]:
    return sorted(_METHOD_ALIASES)


def quantization_from_config(config: dict | None) -> Quantization | None:
    """A checkpoint's `quantization_config` (quant_method fp8/awq/gptq/compressed-tensors, bits, block sizes)."""
    q = (config or {}).get("quantization_config")
    if not isinstance(q, dict):
        return None
    method = str(q.get("quant_method", "")).lower()
    if method == "fp8" and q.get("weight_block_size"):
        method = "fp8_block"
    if method == "compressed-tensors":   # the scheme of its first config group
        groups = q.get("config_groups") or {}
        first = next(iter(groups.values()), {}) if isinstance(groups, dict) else {}
        w, a = (first.get("weights") or {}), (first.get("input_activations") or {})
        if w.get("num_bits") == 4:
            method = "w4a16"
        elif w.get("num_bits") == 8:
            method = "fp8" if w.get("type") == "float" else "int8"
            if not a:
                method = "int8" if w.get("type") != "float" else "fp8"
    elif q.get("bits") == 4 or method in ("awq", "gptq"):
        method = "w4a16"
    return quantization_named(method, "config")


# what a trace's kernels say when the config is silent (vLLM's online quantization="fp8" leaves it unquantized)
_KERNEL_SIGNS = [("fp8", re.compile(r"gemm\w*fp8|fp8\w*gemm|scaled_fp8_quant|Float8_e4m3fn|float_e4m3_t>?, cutlass::bfloat16")),
                 ("int8", re.compile(r"gemm\w*int8|int8\w*gemm|scaled_int8_quant")),
                 ("w4a16", re.compile(r"marlin|machete", re.I))]


def quantization_from_kernels(names) -> Quantization | None:
    """The quantization whose GEMM or quantization kernels a trace runs, None when it runs none of them."""
    text = "\n".join(str(n) for n in names)
    for method, rx in _KERNEL_SIGNS:
        if rx.search(text):
            return quantization_named(method, "kernels")
    return None


def kv_cache_bytes_from_kernels(names) -> int | None:
    """1 when the trace writes an FP8 KV cache (vLLM's cache kernels name their cache type), else None."""
    text = "\n".join(str(n) for n in names if "cache" in str(n))
    return 1 if re.search(r"Fp8KVCacheDataType\)[12]|cache\w*<[^>]*unsigned char", text) else None


@dataclass(frozen=True)
class ModelShape:
    family: str            # gpt2, opt or llama
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int      # MLP width (one branch of a gated MLP)
    vocab: int
    gated_mlp: bool        # act(gate(x)) * up(x)
    rms_norm: bool         # RMSNorm (one weight) rather than LayerNorm (weight and bias)
    rotary: bool
    linear_bias: bool      # every projection has a bias (GPT-2, OPT)
    qkv_bias: bool         # Qwen2's q/k/v projections have one
    elem_bytes: int        # activations and weights
    experts: int = 0                  # routed experts per MoE layer (0: a dense MLP)
    experts_per_token: int = 0        # top-k
    expert_intermediate: int = 0      # one expert's MLP width (one branch of its gated MLP)
    shared_intermediate: int = 0      # Qwen2-MoE's shared expert (0: none)
    shared_gate: bool = False         # the shared expert's output scaled by sigmoid(x . w)
    quant: Quantization = field(default=NO_QUANTIZATION)
    kv_bytes: float = 0.0             # KV-cache element size; 0: the model's element size

    @property
    def q_width(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_width(self) -> int:
        return self.kv_heads * self.head_dim

    @property
    def moe(self) -> bool:
        return self.experts > 0

    @property
    def weight_bytes(self) -> float:
        """A quantized projection's bytes per weight (scales included)."""
        return self.quant.weight_bytes or self.elem_bytes

    @property
    def act_bytes(self) -> float:
        """A quantized projection's bytes per input activation (its per-token scales included)."""
        return self.quant.act_bytes or self.elem_bytes

    @property
    def cache_bytes(self) -> float:
        return self.kv_bytes or self.elem_bytes


def elem_bytes_of(dtype: str | None) -> int | None:
    return ELEM_BYTES.get(str(dtype).replace("torch.", "").lower()) if dtype else None


def model_shape(config: dict | None, elem_bytes: int, quant: Quantization = NO_QUANTIZATION,
                kv_bytes: float = 0.0) -> ModelShape | None:
    """The shape of a config dict (`config.to_dict()`), or None for a family this model does not know."""
    shape = _dense_shape(config, elem_bytes)
    if shape is None:
        return None
    kind = str(config.get("model_type", "")).lower()
    moe = {}
    if kind in _MOE:
        experts = config.get("num_local_experts") or config.get("num_experts") or 0
        moe = dict(experts=int(experts), experts_per_token=int(config.get("num_experts_per_tok") or 2),
                   expert_intermediate=int(config.get("moe_intermediate_size") or config["intermediate_size"]),
                   shared_intermediate=int(config.get("shared_expert_intermediate_size") or 0),
                   shared_gate=bool(config.get("shared_expert_intermediate_size")))
    from dataclasses import replace
    return replace(shape, quant=quant, kv_bytes=kv_bytes, **moe)


def _dense_shape(config: dict | None, elem_bytes: int) -> ModelShape | None:
    if not config:
        return None
    kind = str(config.get("model_type", "")).lower()
    if kind == "gpt2":
        hidden = config["n_embd"]
        return ModelShape("gpt2", hidden, config["n_layer"], config["n_head"], config["n_head"],
                          hidden // config["n_head"], config.get("n_inner") or 4 * hidden, config["vocab_size"],
                          gated_mlp=False, rms_norm=False, rotary=False, linear_bias=True, qkv_bias=True,
                          elem_bytes=elem_bytes)
    if kind == "opt":
        hidden = config["hidden_size"]
        return ModelShape("opt", hidden, config["num_hidden_layers"], config["num_attention_heads"],
                          config["num_attention_heads"], hidden // config["num_attention_heads"], config["ffn_dim"],
                          config["vocab_size"], gated_mlp=False, rms_norm=False, rotary=False, linear_bias=True,
                          qkv_bias=True, elem_bytes=elem_bytes)
    if kind in _LLAMA_LIKE or kind in _MOE:
        hidden, heads = config["hidden_size"], config["num_attention_heads"]
        return ModelShape("llama", hidden, config["num_hidden_layers"], heads,
                          config.get("num_key_value_heads") or heads, config.get("head_dim") or hidden // heads,
                          config["intermediate_size"], config["vocab_size"], gated_mlp=True, rms_norm=True,
                          rotary=True, linear_bias=False, qkv_bias=kind in ("qwen2", "qwen2_moe"), elem_bytes=elem_bytes)
    return None
