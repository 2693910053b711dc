"""Model presets with published architectures, built from a transformers config with seeded random weights.

No model hub is reachable where this runs, and kernel timings do not depend on weight values, so a preset is a
config, not a checkpoint. `--model PATH` loads a local Hugging Face checkpoint instead.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from tracer.errors import TracerError

SEED = 0


# Each preset is the plain dict `config.to_dict()` would give, cut to what transformers needs to build the model
# (model_type and every value that differs from its config class's defaults) and what the analysis reads
# (analysis/work/architecture.py): `tracer analyze --model PRESET` reads it without importing transformers, and only the
# recording path builds the config object from it. A new preset is one entry here.
PRESETS = {
    "gpt2": ({"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "n_inner": None,
              "n_positions": 1024, "vocab_size": 50257},   # transformers' GPT2Config defaults, GPT-2 small
             "GPT-2 small, 124M: transformers' GPT2Config defaults"),
    "opt-125m": ({"model_type": "opt", "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                  "ffn_dim": 3072, "vocab_size": 50272, "max_position_embeddings": 2048, "word_embed_proj_dim": 768},
                 "OPT-125m: hidden 768, 12 layers, 12 heads, FFN 3072, vocab 50272"),
    # Llama-3.2-1B. Its "llama3" RoPE frequency scaling only changes the inverse frequencies' values, not the
    # kernels, so it is left out: every backend then reads the same plain config.
    "llama-1b": ({"model_type": "llama", "hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 32,
                  "num_key_value_heads": 8, "head_dim": 64, "intermediate_size": 8192, "vocab_size": 128256,
                  "rope_theta": 500000.0, "max_position_embeddings": 131072, "rms_norm_eps": 1e-5,
                  "tie_word_embeddings": True, "bos_token_id": 128000, "eos_token_id": 128001},
                 "Llama-3.2-1B: hidden 2048, 16 layers, 32 heads / 8 KV heads, FFN 8192, vocab 128256"),
    "qwen2.5-7b": ({"model_type": "qwen2", "hidden_size": 3584, "num_hidden_layers": 28, "num_attention_heads": 28,
                    "num_key_value_heads": 4, "intermediate_size": 18944, "vocab_size": 152064,
                    "rope_theta": 1000000.0, "max_position_embeddings": 32768, "rms_norm_eps": 1e-6,
                    "tie_word_embeddings": False},
                   "Qwen2.5-7B: hidden 3584, 28 layers, 28 heads / 4 KV heads, FFN 18944, vocab 152064"),
    # Llama-3-8B (its llama3 RoPE scaling left out, as for llama-1b)
    "llama-8b": ({"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
                  "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 14336, "vocab_size": 128256,
                  "rope_theta": 500000.0, "max_position_embeddings": 8192, "rms_norm_eps": 1e-5,
                  "tie_word_embeddings": False, "bos_token_id": 128000, "eos_token_id": 128001},
                 "Llama-3-8B: hidden 4096, 32 layers, 32 heads / 8 KV heads, FFN 14336, vocab 128256"),
    # Mixtral-8x7B: 8 experts of a gated MLP, 2 routed a token. --layers keeps it small.
    "mixtral-8x7b": ({"model_type": "mixtral", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
                      "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 14336, "num_local_experts": 8,
                      "num_experts_per_tok": 2, "vocab_size": 32000, "rope_theta": 1000000.0,
                      "max_position_embeddings": 32768, "rms_norm_eps": 1e-5, "sliding_window": None,
                      "tie_word_embeddings": False},
                     "Mixtral-8x7B (MoE): hidden 4096, 32 layers, 32 heads / 8 KV heads, 8 experts of FFN 14336, "
                     "top-2, vocab 32000 (--layers 2 keeps it small)"),
    # Qwen1.5-MoE-A2.7B: 60 routed experts (4 a token) of width 1408 and a shared expert of width 5632 behind a
    # sigmoid gate; q/k/v biased.
    "qwen1.5-moe": ({"model_type": "qwen2_moe", "hidden_size": 2048, "num_hidden_layers": 24,
                     "num_attention_heads": 16, "num_key_value_heads": 16, "intermediate_size": 5632,
                     "moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632, "num_experts": 60,
                     "num_experts_per_tok": 4, "norm_topk_prob": False, "decoder_sparse_step": 1,
                     "mlp_only_layers": [], "vocab_size": 151936, "rope_theta": 1000000.0,
                     "max_position_embeddings": 8192, "rms_norm_eps": 1e-6, "tie_word_embeddings": False,
                     "use_sliding_window": False},
                    "Qwen1.5-MoE-A2.7B: hidden 2048, 24 layers, 16 heads, 60 experts of FFN 1408, top-4, shared "
                    "expert 5632, vocab 151936"),
}
DEFAULT_MODEL = "gpt2"


def layer_count_key(config: dict) -> str:
    return "n_layer" if "n_layer" in config else "num_hidden_layers"


def config_dict(model: str, layers: int | None = None) -> dict:
    """The config of a preset or a local checkpoint folder (its config.json) as a plain dict, optionally cut to
    `layers` layers; no transformers import, so analysing a trace stays cheap."""
    if model in PRESETS:
        config = dict(PRESETS[model][0])
    elif Path(model).is_dir():
        try:
            config = json.loads((Path(model) / "config.json").read_text())
        except (OSError, ValueError) as e:
            raise TracerError(f"--model {model}: no readable config.json in the folder ({e})") from None
        if not isinstance(config, dict):
            raise TracerError(f"--model {model}: config.json is not a JSON object")
    else:
        raise TracerError(f"unknown model {model!r}: use a preset ({', '.join(PRESETS)}) or a local checkpoint folder")
    if layers is not None:
        full = config.get(layer_count_key(config))
        if not isinstance(full, int) or not 1 <= layers <= full:
            raise TracerError(f"--layers {layers}: {model} has {full} layers")
        config[layer_count_key(config)] = layers
    return config


def model_config(model: str, layers: int | None = None):
    """The transformers config object of a preset or a local checkpoint folder, for the recording path."""
    from transformers import AutoConfig
    if model in PRESETS:
        config = dict(config_dict(model, layers))
        return AutoConfig.for_model(config.pop("model_type"), **config)
    config_dict(model, layers)   # the same errors for a bad folder or --layers
    config = AutoConfig.from_pretrained(model, local_files_only=True)
    if layers is not None:
        setattr(config, "n_layer" if hasattr(config, "n_layer") else "num_hidden_layers", layers)
    return config


def context_tokens(config) -> int | None:
    """How many positions the model can attend over (its position table or RoPE training length), from a
    transformers config or config_dict's plain dict."""
    for key in ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length"):
        value = config.get(key) if isinstance(config, dict) else getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def check_fits_context(model: str, layers: int | None, shapes) -> None:
    """Refuse (prompt, output) shapes the model cannot hold: past its position table a GPU run dies in a
    device-side assert, and vLLM refuses to start. Read from the plain config (a refused request fails before
    torch and transformers are imported: seconds); through transformers where a checkpoint's config.json leaves
    the context to the model class's default."""
    limit = context_tokens(config_dict(model, layers)) or context_tokens(model_config(model, layers))
    too_long = sorted({(p, o) for p, o in shapes if limit and p + o > limit})
    if too_long:
        shown = ", ".join(f"{p}+{o}" for p, o in too_long)
        raise TracerError(f"prompt+output tokens {shown} exceed {model}'s context of {limit} positions; "
                          "use shorter prompts or outputs")


def build_model(model: str, layers: int | None, dtype, device: str):
    """A causal LM on `device`: seeded random weights for a preset, the checkpoint's weights for a folder."""
    import torch
    from transformers import AutoModelForCausalLM

    config = model_config(model, layers)
    if model in PRESETS:
        torch.manual_seed(SEED)
        with torch.device(device):  # initialise in place: a 7B model is not built on the CPU and then copied
            lm = AutoModelForCausalLM.from_config(config, **_dtype_kwarg(dtype))
    else:
        lm = AutoModelForCausalLM.from_pretrained(model, config=config, local_files_only=True, **_dtype_kwarg(dtype))
        lm = lm.to(device)
    return lm.eval(), config


def _dtype_kwarg(dtype) -> dict:
    import transformers
    major = int(transformers.__version__.split(".")[0])
    return {"dtype": dtype} if major >= 5 else {"torch_dtype": dtype}


def saved_checkpoint(model: str, layers: int | None, dtype_name: str) -> str:
    """A local HF checkpoint folder of the model, for engines that load from disk (vLLM).

    A preset is saved once per (config, dtype) under ~/.cache/tracer/models (TRACER_MODEL_CACHE overrides), so the
    HF and vLLM runs of one workload use the same architecture, dtype and seeded weights.
    """
    if model not in PRESETS:
        if layers is not None:
            raise TracerError("--layers works with presets only; a checkpoint folder is loaded as it is")
        return model
    import torch
    config = model_config(model, layers)
    key = hashlib.sha1(json.dumps(config.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:10]
    root = Path(os.environ.get("TRACER_MODEL_CACHE", Path.home() / ".cache" / "tracer" / "models"))
    folder = root / f"{model}-{dtype_name}-{key}"
    if (folder / "config.json").exists():
        return str(folder)
    # initialised on the GPU where there is one: a few billion random weights take minutes on the CPU
    device = "cuda" if torch.cuda.is_available() else "cpu"
    lm, _ = build_model(model, layers, getattr(torch, dtype_name), device)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    lm.save_pretrained(tmp)
    del lm
    if device == "cuda":
        torch.cuda.empty_cache()   # the engine sizes its KV cache from the free memory
    try:
        os.replace(tmp, folder)
    except OSError:   # another process (a parallel test worker) saved the same checkpoint first: use that one
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
        if not (folder / "config.json").exists():
            raise
    return str(folder)
