import pytest

from tests.conftest import assert_one_line_error, run_cli
from tracer.errors import TracerError
from workloads.spec import parse_workload


@pytest.mark.parametrize("name,expected", [
    ("decode_b16", ("decode", 16, 128, 64)),
    ("prefill_b1_s512", ("prefill", 1, 512, 1)),
    ("e2e_b8_s256_o128", ("e2e", 8, 256, 128)),
])
def test_grammar(name, expected):
    w = parse_workload(name)
    assert (w.kind, w.batch, w.prompt_tokens, w.output_tokens) == expected
    assert parse_workload(w.name) == w  # the canonical name parses back to itself


def test_near_miss_suggests_a_spelling():
    with pytest.raises(TracerError, match="did you mean 'decode_b16'"):
        parse_workload("decod_b16")


def test_cli_bad_workload_is_one_line():
    line = assert_one_line_error(run_cli("record", "--workload", "decoding_b16", "--device", "cpu"))
    assert "prefill|decode|e2e" in line


def test_cli_cuda_without_gpu_is_one_line():
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    line = assert_one_line_error(run_cli("record", "--workload", "decode_b1_s8_o2", "--device", "cuda"))
    assert "no CUDA GPU" in line


def test_cli_nsys_without_gpu_is_one_line():
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    assert_one_line_error(run_cli("record", "--workload", "decode_b1_s8_o2", "--profiler", "nsys"))


def test_workloads_lists_presets():
    out = run_cli("workloads").stdout
    for preset in ("gpt2", "opt-125m", "llama-1b", "qwen2.5-7b"):
        assert preset in out


def test_prompt_past_the_models_context_is_one_line(tmp_path):
    """gpt2 has 1024 positions: a longer run would die in a device-side assert on the GPU (seen on the H100),
    and vLLM refuses the engine; both commands say so before starting anything."""
    line = assert_one_line_error(run_cli("record", "-w", "decode_b1_s1000_o30", "--device", "cpu",
                                         "--out", tmp_path / "t.json"))
    assert "1000+30" in line and "1024" in line
    line = assert_one_line_error(run_cli("sweep", "--prompt", "32,1024", "--output", "64", "--device", "cpu",
                                         "--out", tmp_path / "s"))
    assert "1024+64" in line and "32+64" not in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("preset", ["gpt2", "opt-125m", "llama-1b", "qwen2.5-7b"])
def test_preset_dict_builds_the_transformers_config_the_analysis_reads(preset):
    """A preset is a plain dict (analysis reads it without transformers); the recording path builds the config
    class from it. Both must describe one model, also cut to fewer layers."""
    from analysis.work.architecture import model_shape
    from workloads.models import config_dict, model_config

    for layers in (None, 2):
        plain, built = config_dict(preset, layers), model_config(preset, layers).to_dict()
        # transformers 5 keeps rope_theta inside rope_parameters
        built.update({k: v for k, v in (built.get("rope_parameters") or {}).items() if k in plain})
        assert {k: built.get(k) for k in plain} == plain
        assert model_shape(plain, 2) == model_shape(built, 2) is not None
    assert model_shape(config_dict(preset, 2), 2).layers == 2


def test_layers_past_a_presets_depth_is_one_line():
    from workloads.models import config_dict
    with pytest.raises(TracerError, match="has 12 layers"):
        config_dict("gpt2", 13)
