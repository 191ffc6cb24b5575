"""Every zoo builder, one table: summary totals, save/load round trip, ONNX export with parity.

Each row of ``CASES`` builds a small instance of one builder in ``kiln.zoo.BUILDERS`` and the
inputs to call it with (a dict, as ``export_model_onnx`` and run configs pass them). A guard
test fails when a builder is added to ``BUILDERS`` without a row here.
"""

from __future__ import annotations

import pytest
import torch

import kiln
import kiln.zoo

slow = pytest.mark.slow


def _image(h, w, c, batch=3):
    return {"x": torch.randn(batch, h, w, c)}


def _ids(vocab, length, batch=3):
    return torch.randint(1, vocab, (batch, length))


def _bert_inputs():
    ids = _ids(50, 12)
    mask = torch.ones_like(ids)
    mask[0, 8:] = 0                                   # one padded row, so the mask matters
    return {"input_ids": ids, "attention_mask": mask}


_FUSION_INPUTS = [{"name": "age", "type": "numeric", "shape": [3]},
                  {"name": "city", "type": "category", "vocab_size": 7}]

# name -> (builder kwargs, inputs factory, marks on the ONNX case)
CASES: dict[str, tuple[dict, object, tuple]] = {
    "mlp": (dict(input_dim=6, num_classes=3, hidden=(16,)), lambda: {"x": torch.randn(3, 6)}, ()),
    "vgg11": (dict(num_classes=4, input_shape=(32, 32, 3), width=8), lambda: _image(32, 32, 3), ()),
    "vgg13": (dict(num_classes=4, input_shape=(32, 32, 3), width=8), lambda: _image(32, 32, 3), (slow,)),
    "vgg16": (dict(num_classes=4, input_shape=(32, 32, 3), width=8), lambda: _image(32, 32, 3), (slow,)),
    "vgg19": (dict(num_classes=4, input_shape=(32, 32, 3), width=8), lambda: _image(32, 32, 3), (slow,)),
    "resnet18": (dict(num_classes=5, input_shape=(28, 28, 1), width=8), lambda: _image(28, 28, 1), ()),
    "resnet34": (dict(num_classes=5, input_shape=(28, 28, 1), width=8), lambda: _image(28, 28, 1), (slow,)),
    "resnet50": (dict(num_classes=5, input_shape=(28, 28, 1), width=8), lambda: _image(28, 28, 1), (slow,)),
    "vit": (dict(num_classes=4, input_shape=(16, 16, 3), patch_size=4, depth=2, heads=2, width=32),
            lambda: _image(16, 16, 3), ()),
    "vit_tiny": (dict(num_classes=4, input_shape=(16, 16, 3), patch_size=4), lambda: _image(16, 16, 3), (slow,)),
    "unet": (dict(num_classes=2, input_shape=(16, 16, 1), depth=2, width=8), lambda: _image(16, 16, 1), ()),
    "bert": (dict(vocab_size=50, num_classes=3, hidden=32, layers=2, heads=2, intermediate=64, max_length=16),
             _bert_inputs, ()),
    "bert_tiny": (dict(vocab_size=50, num_classes=3, max_length=16), _bert_inputs, (slow,)),
    "gpt": (dict(vocab_size=40, block_size=16, n_layer=2, n_head=2, n_embd=32), lambda: {"x": _ids(40, 10)}, ()),
    "gpt_tiny": (dict(vocab_size=40, block_size=16), lambda: {"x": _ids(40, 10)}, (slow,)),
    "wavenet": (dict(task="classification", num_classes=3, layers=4, stacks=1, residual_channels=8,
                     skip_channels=16), lambda: {"x": torch.randn(3, 400)}, ()),
    "audio_transformer": (dict(num_classes=3, sample_rate=8000, n_mels=16, n_fft=200, hop_length=80, patch=(4, 8),
                               depth=1, heads=2, width=32), lambda: {"x": torch.randn(3, 2000)}, ()),
    "fusion": (dict(inputs=_FUSION_INPUTS, num_classes=3, hidden=16),
               lambda: {"age": torch.randn(3, 3), "city": torch.randint(0, 7, (3, 1))}, ()),
}


def _build(name):
    kwargs, make_inputs, _ = CASES[name]
    torch.manual_seed(0)
    model = kiln.zoo.get(name)(**kwargs).eval()
    return model, make_inputs()


def _call(model, inputs):
    with torch.no_grad():
        return model(inputs)


def test_every_builder_has_a_row():
    missing = sorted(set(kiln.zoo.BUILDERS) - set(CASES))
    stale = sorted(set(CASES) - set(kiln.zoo.BUILDERS))
    assert not missing, f"add a row to CASES in {__file__} for the new zoo builder(s) {missing}"
    assert not stale, f"CASES has rows for builders no longer in kiln.zoo.BUILDERS: {stale}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_summary_total_equals_parameter_count(name):
    model, inputs = _build(name)
    _call(model, inputs)                              # records the example the table's shapes come from
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Layer (type)" in text and "Output Shape" in text
    expected = sum(p.numel() for p in model.parameters())
    expected += sum(b.numel() for b in model.buffers() if b.is_floating_point())
    assert f" Total params: {expected:,} (" in text, text


@pytest.mark.parametrize("name", sorted(CASES))
def test_save_load_round_trip_gives_the_same_outputs(name, tmp_path):
    model, inputs = _build(name)
    expected = _call(model, inputs)
    model.save(tmp_path / "m.keras")
    loaded = kiln.load_model(tmp_path / "m.keras").eval()
    assert type(loaded) is type(model)
    torch.testing.assert_close(_call(loaded, inputs), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", [pytest.param(n, marks=CASES[n][2]) for n in sorted(CASES)])
def test_onnx_export_matches_torch(name, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from kiln.export.onnx import export_model_onnx
    model, inputs = _build(name)
    # export_model_onnx runs onnxruntime on the inputs and raises if any output differs by > tolerance
    path = export_model_onnx(model, inputs, tmp_path / "m.onnx", tolerance=1e-4)
    assert path.is_file() and path.stat().st_size > 0


def test_builders_stay_callable_after_their_module_is_imported():
    """`from kiln.zoo.vit import load_hf_vit` must not turn `kiln.zoo.vit` into the module."""
    import importlib
    import sys

    import kiln.zoo
    for name, target in kiln.zoo.BUILDERS.items():
        importlib.import_module(f"kiln.zoo.{target.split(':')[0]}")  # as `from kiln.zoo.<module> import ...` does
        assert callable(getattr(kiln.zoo, name)), name
        assert not isinstance(getattr(kiln.zoo, name), type(sys)), name
    from kiln.zoo.vit import load_hf_vit  # the module is still importable as usual
    assert callable(load_hf_vit) and sys.modules["kiln.zoo.vit"].vit is kiln.zoo.vit


def test_hf_loaders_are_reachable_from_kiln_zoo():
    import kiln
    from kiln.zoo.bert import load_hf_bert
    from kiln.zoo.gpt import load_hf_gpt2
    from kiln.zoo.vit import load_hf_vit
    assert (kiln.zoo.load_hf_bert, kiln.zoo.load_hf_gpt2, kiln.zoo.load_hf_vit) == (load_hf_bert, load_hf_gpt2,
                                                                                   load_hf_vit)
