"""A transformer's shape, read from its Hugging Face config (a plain dict: the sidecar keeps it, `--model` gives it),
as much as the work model needs: sizes of every layer operation, not weights.

Families: GPT-2 and OPT (LayerNorm, learned positions, biased linears, plain MLP) and the Llama family (Llama,
Qwen2, Mistral: RMSNorm, rotary positions, grouped KV heads, gated MLP). A config of another kind gives None:
its kernels then keep only the work their ops' shapes give.
"""
from __future__ import annotations

from dataclasses import dataclass

ELEM_BYTES = {"bfloat16": 2, "float16": 2, "half": 2, "float32": 4, "float": 4, "float64": 8, "fp8": 1}
_LLAMA_LIKE = ("llama", "qwen2", "mistral", "qwen3", "gemma", "phi3")


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

    @property
    def q_width(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_width(self) -> int:
        return self.kv_heads * self.head_dim


def elem_bytes_of(dtype: str | None) -> int | None:
    return ELEM_BYTES.get(str(dtype).replace("torch.", "").lower()) if dtype else None


def model_shape(config: dict | None, elem_bytes: int) -> ModelShape | None:
    """The shape of a config dict (`config.to_dict()`), or None for a family this model does not know."""
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
    if kind in _LLAMA_LIKE:
        hidden, heads = config["hidden_size"], config["num_attention_heads"]
        return ModelShape("llama", hidden, config["num_hidden_layers"], heads,
                          config.get("num_key_value_heads") or heads, config.get("head_dim") or hidden // heads,
                          config["intermediate_size"], config["vocab_size"], gated_mlp=True, rms_norm=True,
                          rotary=True, linear_bias=False, qkv_bias=kind == "qwen2", elem_bytes=elem_bytes)
    return None
