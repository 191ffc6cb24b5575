"""The zoo's config field names follow the scheme of docs/zoo.md ("Config field names"): each
concept has one name, and the documented exceptions are the only ones."""

import dataclasses
import importlib

import pytest

CONFIGS = {  # module -> config dataclass
    "mlp": "MLPConfig", "vgg": "VGGConfig", "resnet": "ResNetConfig", "vit": "ViTConfig", "bert": "BertConfig",
    "gpt": "GPTConfig", "wavenet": "WaveNetConfig", "audio_transformer": "AudioTransformerConfig",
    "fusion": "FusionConfig", "unet": "UNetConfig",
}
# concept -> {module: field}, exactly the table in docs/zoo.md
SCHEME = {
    "classes": {m: "num_classes" for m in CONFIGS if m != "gpt"},  # a language model: vocab_size
    "dropout": {m: "dropout" for m in ("mlp", "vgg", "vit", "bert", "gpt", "wavenet", "audio_transformer", "fusion")},
    "width": {"vgg": "width", "resnet": "width", "vit": "width", "audio_transformer": "width", "unet": "width",
              "bert": "hidden", "fusion": "hidden", "gpt": "n_embd"},
    "depth": {"vgg": "depth", "vit": "depth", "audio_transformer": "depth", "unet": "depth", "bert": "layers",
              "gpt": "n_layer"},
    "heads": {"vit": "heads", "bert": "heads", "audio_transformer": "heads", "fusion": "heads", "gpt": "n_head"},
    "longest input": {"bert": "max_length", "gpt": "block_size", "audio_transformer": "max_frames"},
    "layer norm epsilon": {"vit": "layer_norm_eps", "bert": "layer_norm_eps", "gpt": "layer_norm_epsilon"},
    "input size": {"vgg": "input_shape", "resnet": "input_shape", "vit": "input_shape", "unet": "input_shape"},
}
SYNONYMS = {"num_layers", "n_layers", "num_heads", "n_heads", "dropout_rate", "classes", "embed_dim", "d_model",
            "hidden_size", "hidden_dim", "n_classes", "num_blocks"}


def _fields(module):
    cls = getattr(importlib.import_module(f"kiln.zoo.{module}"), CONFIGS[module])
    return {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("concept", sorted(SCHEME))
def test_each_concept_has_its_documented_name(concept):
    for module, field in SCHEME[concept].items():
        assert field in _fields(module), f"{CONFIGS[module]} has no `{field}` ({concept})"


@pytest.mark.parametrize("module", sorted(CONFIGS))
def test_no_config_uses_an_undocumented_synonym(module):
    assert not _fields(module) & SYNONYMS
