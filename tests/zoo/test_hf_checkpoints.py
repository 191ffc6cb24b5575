"""Hugging Face checkpoints as a new user has them: every common BERT, GPT-2 and ViT class and
setting, saved by transformers' ``save_pretrained``, loaded by kiln and compared with
transformers within 1e-5; then fitted one step and round-tripped through kiln's own format.
And the folders kiln must refuse, each with an error that names what is wrong.

Tiny random models (hidden 32, 2 layers, vocab 100), seeded, so every test runs in well under 2 s; the
variant tests redraw every weight at std 0.5 (``_perturbed``), so a wrong activation cannot hide.
"""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import kiln
from kiln.errors import KilnValueError
from kiln.losses import MeanSquaredError, SparseCategoricalCrossentropy
from kiln.zoo.bert import Bert, BertForClassification, BertForMaskedLM, load_hf_bert
from kiln.zoo.gpt import GPT, load_hf_gpt2
from kiln.zoo.vit import ViT, load_hf_vit

transformers = pytest.importorskip("transformers")
# transformers imports each model family on first use; pay that once, at collection, not in a test
transformers.BertModel, transformers.GPT2Model, transformers.ViTModel

VOCAB, TOL = 100, dict(rtol=1e-5, atol=1e-5)
LOADERS = {"bert": load_hf_bert, "gpt2": load_hf_gpt2, "vit": load_hf_vit}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny matrices: one thread is faster, and far faster on a busy machine (seconds -> 0.1 s per test)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _perturbed(hf_model, std: float = 0.5):
    """``hf_model`` with every weight (biases, norms, embeddings too) redrawn from N(0, std²).

    Why: transformers initialises with std 0.02, biases 0 and norms 1, so activations stay so small
    that exact and tanh GELU (and other near-misses) agree to 1e-5, and a wrong activation in a
    loader passed every parity test. At std 0.5 they differ by far more than the tolerance.
    """
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in hf_model.parameters():  # tied weights (lm_head = wte) are one parameter
            parameter.copy_(torch.randn(parameter.shape, generator=g) * std)
    return hf_model


def _save(hf_model, folder: Path, **kwargs) -> Path:
    hf_model.save_pretrained(folder, safe_serialization=True, **kwargs)
    return folder


def _edit_config(folder: Path, **changes) -> None:
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def _load_quietly(loader, folder, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a supported variant loads without a note
        return loader(folder, **kwargs)


def _load_noting(loader, folder, note):
    """Load ``folder``: with no warning when ``note`` is None, else with a warning matching ``note``."""
    if note is None:
        return _load_quietly(loader, folder)
    with pytest.warns(UserWarning, match=note):
        return loader(folder)


def _fits_and_round_trips(model, x, y, loss, tmp_path):
    """One training step runs, and kiln's save / load_model gives back the same outputs."""
    model.compile(optimizer="adam", loss=loss, num_threads=None)
    model.fit(x, y, batch_size=len(y), epochs=1, verbose=0)
    model.eval()
    model.save(tmp_path / "kiln_model")
    loaded = kiln.models.load_model(tmp_path / "kiln_model").eval()
    assert type(loaded) is type(model) and loaded.config == model.config
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


# ---------------------------------------------------------------------- BERT
def _bert_config(**overrides):
    fields = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                  vocab_size=VOCAB, max_position_embeddings=32)
    return transformers.BertConfig(**{**fields, **overrides})


def _bert_inputs(type_vocab_size=2):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, VOCAB, (3, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0  # a padded row
    types = torch.zeros_like(ids)
    if type_vocab_size > 1:
        types[:, 6:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


# name -> (build the transformers model, kiln class, transformers output to compare, note expected)
BERT_VARIANTS = {
    "BertModel": (lambda: transformers.BertModel(_bert_config()), Bert, "last_hidden_state", None),
    "BertModel-no-pooler": (lambda: transformers.BertModel(_bert_config(), add_pooling_layer=False), Bert,
                            "last_hidden_state", "no pooler"),
    "SequenceClassification-2": (lambda: transformers.BertForSequenceClassification(_bert_config(num_labels=2)),
                                 BertForClassification, "logits", None),
    "SequenceClassification-5-id2label": (lambda: transformers.BertForSequenceClassification(_bert_config(
        id2label={i: f"label_{i}" for i in range(5)}, label2id={f"label_{i}": i for i in range(5)})),
        BertForClassification, "logits", None),
    "MaskedLM": (lambda: transformers.BertForMaskedLM(_bert_config()), BertForMaskedLM, "logits", None),
    "PreTraining": (lambda: transformers.BertForPreTraining(_bert_config()), BertForMaskedLM, "prediction_logits",
                    "cls.seq_relationship"),
    "type_vocab_size-1": (lambda: transformers.BertForSequenceClassification(_bert_config(type_vocab_size=1)),
                          BertForClassification, "logits", None),
}


@pytest.mark.parametrize("variant", sorted(BERT_VARIANTS))
def test_bert_variant_matches_transformers(variant, tmp_path):
    build, kiln_cls, output, note = BERT_VARIANTS[variant]
    torch.manual_seed(0)
    hf = _perturbed(build()).eval()
    folder = _save(hf, tmp_path / "hf")
    model = _load_noting(load_hf_bert, folder, note)
    assert type(model) is kiln_cls and not model.training
    inputs = _bert_inputs(hf.config.type_vocab_size)
    with torch.no_grad():
        expected = getattr(hf(**inputs), output)
        got = model(inputs)
    if got.dim() == 3:  # per-token outputs: padded positions carry no meaning; compare the real ones
        keep = inputs["attention_mask"].bool()
        got, expected = got[keep], expected[keep]
    torch.testing.assert_close(got, expected, **TOL)
    if kiln_cls is BertForClassification:
        assert model.config.num_classes == hf.config.num_labels
    y = {Bert: torch.zeros(3, 12, 32), BertForClassification: torch.tensor([0, 1, 0]),
         BertForMaskedLM: inputs["input_ids"]}[kiln_cls]
    loss = MeanSquaredError() if kiln_cls is Bert else SparseCategoricalCrossentropy(from_logits=True)
    _fits_and_round_trips(model, inputs, y, loss, tmp_path)


def test_bert_pooler_matches_transformers_pooler_output(tmp_path):
    torch.manual_seed(0)
    hf = transformers.BertModel(_bert_config()).eval()
    model = _load_quietly(load_hf_bert, _save(hf, tmp_path))
    inputs = _bert_inputs()
    with torch.no_grad():
        torch.testing.assert_close(model.encode(inputs)[1], hf(**inputs).pooler_output, **TOL)


def test_bert_task_chooses_the_head_or_explains_how_to_get_one(tmp_path):
    torch.manual_seed(0)
    folder = _save(transformers.BertForMaskedLM(_bert_config()), tmp_path)
    with pytest.raises(KilnValueError, match="from_pretrained_encoder") as err:
        load_hf_bert(folder, task="classification")
    assert "classifier" in str(err.value)
    with pytest.warns(UserWarning) as notes:
        encoder = load_hf_bert(folder, task="encoder")
    notes = " ".join(str(n.message) for n in notes)
    assert "cls.predictions" in notes and "no pooler" in notes  # what is left out and what is not pretrained
    assert type(encoder) is Bert
    classifier = BertForClassification.from_pretrained_encoder(encoder, num_classes=3)
    assert classifier(_bert_inputs()).shape == (3, 3)
    with pytest.raises(KilnValueError, match="task"):
        load_hf_bert(folder, task="ner")


def test_bert_heads_kiln_lacks_are_refused_but_their_encoder_loads(tmp_path):
    torch.manual_seed(0)
    hf = transformers.BertForTokenClassification(_bert_config(num_labels=4)).eval()
    folder = _save(hf, tmp_path)
    with pytest.raises(KilnValueError, match="BertForTokenClassification.*task='encoder'"):
        load_hf_bert(folder)
    with pytest.warns(UserWarning) as notes:
        model = load_hf_bert(folder, task="encoder")
    assert any("'classifier.weight'" in str(n.message) for n in notes)
    inputs = _bert_inputs()
    with torch.no_grad():
        expected = hf.bert(**inputs).last_hidden_state
    keep = inputs["attention_mask"].bool()
    torch.testing.assert_close(model(inputs)[keep], expected[keep], **TOL)


@pytest.mark.parametrize("field, value, named", [
    ("hidden_act", "gelu_new", "hidden_act"),
    ("hidden_act", "relu", "hidden_act"),
    ("position_embedding_type", "relative_key", "position_embedding_type"),
    ("is_decoder", True, "is_decoder"),
])
def test_bert_config_kiln_cannot_express_is_refused(field, value, named, tmp_path):
    torch.manual_seed(0)
    folder = _save(transformers.BertForMaskedLM(_bert_config()), tmp_path)
    _edit_config(folder, **{field: value})
    with pytest.raises(KilnValueError, match=named) as err:
        load_hf_bert(folder)
    assert "Supported" in str(err.value)


def test_bert_config_problems_are_reported_together(tmp_path):
    torch.manual_seed(0)
    folder = _save(transformers.BertForMaskedLM(_bert_config()), tmp_path)
    _edit_config(folder, hidden_act="relu", position_embedding_type="relative_key", num_attention_heads=3)
    with pytest.raises(KilnValueError) as err:
        load_hf_bert(folder)
    message = str(err.value)
    assert "hidden_act" in message and "position_embedding_type" in message and "num_attention_heads=3" in message


# ---------------------------------------------------------------------- GPT-2
def _gpt2_config(**overrides):
    fields = dict(n_embd=32, n_layer=2, n_head=2, vocab_size=VOCAB, n_positions=32,
                  bos_token_id=None, eos_token_id=None)  # no end token: both sides generate every token
    return transformers.GPT2Config(**{**fields, **overrides})


def _gpt2_ids():
    return torch.randint(0, VOCAB, (3, 10), generator=torch.Generator().manual_seed(0))


GPT2_VARIANTS = {
    "LMHead-gelu_new": dict(),
    "gelu-exact": dict(activation_function="gelu"),
    "gelu_pytorch_tanh": dict(activation_function="gelu_pytorch_tanh"),
    "n_positions-40-n_ctx-20": dict(n_positions=40, n_ctx=20),
    "no-scale_attn_weights": dict(scale_attn_weights=False),
    "scale_attn_by_inverse_layer_idx": dict(scale_attn_by_inverse_layer_idx=True),
    "reorder_and_upcast_attn": dict(reorder_and_upcast_attn=True),
    "layer_norm_epsilon-1e-3": dict(layer_norm_epsilon=1e-3),
}


@pytest.mark.parametrize("variant", sorted(GPT2_VARIANTS))
def test_gpt2_variant_matches_transformers(variant, tmp_path):
    torch.manual_seed(0)
    # eager attention: the only path where transformers honours reorder_and_upcast_attn
    config = _gpt2_config(**GPT2_VARIANTS[variant], attn_implementation="eager")
    hf = _perturbed(transformers.GPT2LMHeadModel(config)).eval()
    _check_gpt2(hf, _load_quietly(load_hf_gpt2, _save(hf, tmp_path / "hf")), tmp_path)


def test_gpt2_bare_model_without_prefix_or_lm_head(tmp_path):
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(_gpt2_config()).eval()
    folder = _save(hf.transformer, tmp_path / "hf")  # a GPT2Model: keys without "transformer.", no lm_head
    names = load_file(folder / "model.safetensors")
    assert "wte.weight" in names and not any(k.startswith(("transformer.", "lm_head")) for k in names)
    _check_gpt2(hf, _load_quietly(load_hf_gpt2, folder), tmp_path)


def test_gpt2_sharded_checkpoint(tmp_path):
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(_gpt2_config()).eval()
    folder = _save(hf, tmp_path / "hf", max_shard_size="50KB")
    assert (folder / "model.safetensors.index.json").is_file() and not (folder / "model.safetensors").exists()
    assert len(list(folder.glob("model-*.safetensors"))) > 1
    _check_gpt2(hf, _load_quietly(load_hf_gpt2, folder), tmp_path)


def _check_gpt2(hf, model, tmp_path):
    assert type(model) is GPT and not model.training
    ids = _gpt2_ids()
    with torch.no_grad():
        torch.testing.assert_close(model(ids), hf(ids).logits, **TOL)
        prompt = ids[:2, :5]
        hf_tokens = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=8,
                                do_sample=False, pad_token_id=0)
    assert hf_tokens.shape == (2, 13) and torch.equal(model.generate(prompt, 8, temperature=0), hf_tokens)
    _fits_and_round_trips(model, ids[:, :-1], ids[:, 1:], SparseCategoricalCrossentropy(from_logits=True), tmp_path)


def test_gpt2_sampling_is_reproducible_with_kilns_own_seed(tmp_path):
    # transformers' sampling draws from torch's global stream in its own order: kiln cannot
    # reproduce its tokens, only its greedy ones. kiln's seed= makes kiln's own samples repeat.
    torch.manual_seed(0)
    model = _load_quietly(load_hf_gpt2, _save(transformers.GPT2LMHeadModel(_gpt2_config()), tmp_path))
    prompt = _gpt2_ids()[:2, :5]
    first = model.generate(prompt, 8, temperature=1.0, top_k=20, seed=123)
    assert torch.equal(first, model.generate(prompt, 8, temperature=1.0, top_k=20, seed=123))
    assert any(not torch.equal(first, model.generate(prompt, 8, temperature=1.0, top_k=20, seed=s))
               for s in range(5))


@pytest.mark.parametrize("overrides, named", [
    (dict(activation_function="relu"), "activation_function"),
    (dict(n_inner=48), "n_inner"),
    (dict(add_cross_attention=True), "add_cross_attention"),
])
def test_gpt2_config_kiln_cannot_express_is_refused(overrides, named, tmp_path):
    torch.manual_seed(0)
    folder = _save(transformers.GPT2LMHeadModel(_gpt2_config()), tmp_path)
    _edit_config(folder, **overrides)
    with pytest.raises(KilnValueError, match=named) as err:
        load_hf_gpt2(folder)
    assert "Supported" in str(err.value)


def test_gpt2_untied_lm_head_and_other_heads_are_refused(tmp_path):
    torch.manual_seed(0)
    untied = transformers.GPT2LMHeadModel(_gpt2_config(tie_word_embeddings=False))
    with pytest.raises(KilnValueError, match="lm_head.weight.*ties"):
        load_hf_gpt2(_save(untied, tmp_path / "untied"))
    classifier = transformers.GPT2ForSequenceClassification(_gpt2_config(num_labels=3, pad_token_id=0))
    with pytest.raises(KilnValueError, match="GPT2ForSequenceClassification.*GPT2LMHeadModel"):
        load_hf_gpt2(_save(classifier, tmp_path / "classifier"))


# ---------------------------------------------------------------------- ViT
def _vit_config(**overrides):
    fields = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                  image_size=16, patch_size=4, num_channels=3)
    return transformers.ViTConfig(**{**fields, **overrides})


VIT_VARIANTS = {
    "ImageClassification": (lambda: transformers.ViTForImageClassification(_vit_config(num_labels=5)), None),
    "ImageClassification-24px-patch8-1ch-no-qkv-bias": (lambda: transformers.ViTForImageClassification(
        _vit_config(image_size=24, patch_size=8, num_channels=1, qkv_bias=False, num_labels=3)), None),
    "ImageClassification-gelu_pytorch_tanh": (lambda: transformers.ViTForImageClassification(
        _vit_config(hidden_act="gelu_pytorch_tanh", num_labels=4)), None),
    "ViTModel": (lambda: transformers.ViTModel(_vit_config()), "pooler"),
    "ViTModel-no-pooler": (lambda: transformers.ViTModel(_vit_config(), add_pooling_layer=False), None),
}


@pytest.mark.parametrize("variant", sorted(VIT_VARIANTS))
def test_vit_variant_matches_transformers(variant, tmp_path):
    build, note = VIT_VARIANTS[variant]
    torch.manual_seed(0)
    hf = _perturbed(build()).eval()
    folder = _save(hf, tmp_path / "hf")
    model = _load_noting(load_hf_vit, folder, note)
    assert type(model) is ViT and not model.training
    c = hf.config
    pixel_values = torch.randn(4, c.num_channels, c.image_size, c.image_size,
                               generator=torch.Generator().manual_seed(0))  # transformers: (B, C, H, W)
    x = pixel_values.permute(0, 2, 3, 1)                                       # kiln: (B, H, W, C)
    with torch.no_grad():
        out = hf(pixel_values=pixel_values)
        expected = out.logits if hasattr(out, "logits") else out.last_hidden_state[:, 0]  # ViTModel: [CLS] features
        torch.testing.assert_close(model(x), expected, **TOL)
    _fits_and_round_trips(model, x, torch.tensor([0, 1, 2, 0]),
                          SparseCategoricalCrossentropy(from_logits=True), tmp_path)


def test_vit_num_classes_gives_a_new_head_on_the_pretrained_encoder(tmp_path):
    torch.manual_seed(0)
    folder = _save(transformers.ViTForImageClassification(_vit_config(num_labels=5)), tmp_path)
    pretrained = load_hf_vit(folder)
    with pytest.warns(UserWarning, match="classifier"):
        model = load_hf_vit(folder, num_classes=7)
    assert model.config.num_classes == 7 and model(torch.randn(2, 16, 16, 3)).shape == (2, 7)
    for name, value in model.state_dict().items():
        if not name.startswith("head."):
            assert torch.equal(value, pretrained.state_dict()[name]), name
    with pytest.raises(KilnValueError, match="num_classes"):
        load_hf_vit(folder, num_classes=0)


@pytest.mark.parametrize("overrides, named", [
    (dict(hidden_act="relu"), "hidden_act"),
    (dict(patch_size=5), "patch_size"),
    (dict(patch_size=[4, 2]), "square"),
    (dict(architectures=["ViTForMaskedImageModeling"]), "pixel decoder"),
])
def test_vit_config_kiln_cannot_express_is_refused(overrides, named, tmp_path):
    torch.manual_seed(0)
    folder = _save(transformers.ViTForImageClassification(_vit_config()), tmp_path)
    _edit_config(folder, **overrides)
    with pytest.raises(KilnValueError, match=named):
        load_hf_vit(folder)


# ---------------------------------------------------------------------- files, for all three
def _tiny(family):
    torch.manual_seed(0)
    return {"bert": lambda: transformers.BertForSequenceClassification(_bert_config()),
            "gpt2": lambda: transformers.GPT2LMHeadModel(_gpt2_config()),
            "vit": lambda: transformers.ViTForImageClassification(_vit_config())}[family]()


@pytest.mark.parametrize("family", sorted(LOADERS))
def test_sharded_checkpoint_loads_like_the_single_file(family, tmp_path):
    hf = _tiny(family)
    single = LOADERS[family](_save(hf, tmp_path / "single"))
    folder = _save(hf, tmp_path / "sharded", max_shard_size="50KB")
    assert len(json.loads((folder / "model.safetensors.index.json").read_text())["weight_map"]) > 0
    sharded = LOADERS[family](folder)
    for name, value in single.state_dict().items():
        assert torch.equal(value, sharded.state_dict()[name]), name
    next(folder.glob("model-00002-*.safetensors")).unlink()
    with pytest.raises(KilnValueError, match="model-00002-of-"):
        LOADERS[family](folder)


def _layernorm_gamma_beta(tensors):
    """BERT checkpoints converted from TensorFlow: LayerNorm.gamma / .beta and a position_ids buffer."""
    renamed = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
               for k, v in tensors.items()}
    return {**renamed, "bert.embeddings.position_ids": torch.arange(32)[None]}


@pytest.mark.parametrize("family, rename", [("bert", None), ("gpt2", None), ("vit", None),
                                            ("bert", _layernorm_gamma_beta)])
def test_a_state_dict_written_with_safetensors_loads_too(family, rename, tmp_path):
    # What `save_file(model.state_dict(), ...)` gives: transformers 5's in-memory names (ViT's
    # vit.layers.0.attention.q_proj ...) and the tied copies (BERT's MLM decoder, GPT-2's lm_head).
    hf = {"bert": lambda: transformers.BertForMaskedLM(_bert_config()),
          "gpt2": lambda: transformers.GPT2LMHeadModel(_gpt2_config()),
          "vit": lambda: transformers.ViTForImageClassification(_vit_config())}[family]().eval()
    tensors = {k: v.detach().clone().contiguous() for k, v in hf.state_dict().items()}
    hf.config.save_pretrained(tmp_path)
    save_file(rename(tensors) if rename else tensors, tmp_path / "model.safetensors", metadata={"format": "pt"})
    model = _load_quietly(LOADERS[family], tmp_path)
    with torch.no_grad():
        if family == "vit":
            x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
            got, expected = model(x.permute(0, 2, 3, 1)), hf(pixel_values=x).logits
        else:
            ids = _gpt2_ids()
            got, expected = model(ids), hf(ids).logits
    torch.testing.assert_close(got, expected, **TOL)


def test_an_untied_bert_mlm_decoder_is_refused(tmp_path):
    torch.manual_seed(0)
    hf = transformers.BertForMaskedLM(_bert_config())
    tensors = {k: v.detach().clone().contiguous() for k, v in hf.state_dict().items()}
    tensors["cls.predictions.decoder.weight"] += 1.0
    hf.config.save_pretrained(tmp_path)
    save_file(tensors, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(KilnValueError, match="cls.predictions.decoder.weight.*ties"):
        load_hf_bert(tmp_path)


@pytest.mark.parametrize("family", sorted(LOADERS))
def test_pickled_weights_are_refused_without_unpickling(family, tmp_path, monkeypatch):
    hf = _tiny(family)
    hf.config.architectures = [type(hf).__name__]  # as save_pretrained writes it
    hf.config.save_pretrained(tmp_path)
    torch.save(hf.state_dict(), tmp_path / "pytorch_model.bin")  # the pickled format of older transformers

    def forbidden(*args, **kwargs):
        raise AssertionError("kiln must never unpickle a checkpoint")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    with pytest.raises(KilnValueError) as err:
        LOADERS[family](tmp_path)
    message = str(err.value)
    assert "pytorch_model.bin" in message and "safe_serialization=True" in message
    assert f"{type(hf).__name__}.from_pretrained" in message  # the exact command to convert it


@pytest.mark.parametrize("family", sorted(LOADERS))
def test_missing_folder_config_or_weights_are_named(family, tmp_path):
    loader = LOADERS[family]
    with pytest.raises(KilnValueError, match="not a directory"):
        loader(tmp_path / "nowhere")
    with pytest.raises(KilnValueError, match="config.json is missing"):
        loader(tmp_path)
    _tiny(family).config.save_pretrained(tmp_path)
    with pytest.raises(KilnValueError, match="model.safetensors"):
        loader(tmp_path)


@pytest.mark.parametrize("family, other", [("bert", "gpt2"), ("gpt2", "vit"), ("vit", "bert")])
def test_a_checkpoint_of_another_model_type_names_its_loader(family, other, tmp_path):
    folder = _save(_tiny(other), tmp_path)
    with pytest.raises(KilnValueError, match=f"model_type='{other}'.*load_hf_{other}"):
        LOADERS[family](folder)


@pytest.mark.parametrize("family, dropped", [
    ("bert", "bert.encoder.layer.1.output.dense.weight"),
    ("gpt2", "transformer.h.1.mlp.c_fc.weight"),
    ("vit", "vit.encoder.layer.0.attention.attention.key.bias"),
])
def test_missing_unexpected_and_misshapen_tensors_are_named(family, dropped, tmp_path):
    folder = _save(_tiny(family), tmp_path)
    original = load_file(folder / "model.safetensors")
    tensors = dict(original)
    del tensors[dropped]
    tensors["surprise.weight"] = torch.zeros(3)
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(KilnValueError) as err:
        LOADERS[family](folder)
    message = str(err.value)
    assert dropped.split(".", 1)[1] in message and "missing" in message
    assert "'surprise.weight'" in message and "unexpected" in message

    save_file(original, folder / "model.safetensors", metadata={"format": "pt"})
    size_field = {"bert": "intermediate_size", "gpt2": "vocab_size", "vit": "intermediate_size"}[family]
    _edit_config(folder, **{size_field: 48 if family != "gpt2" else VOCAB + 1})
    with pytest.raises(KilnValueError, match="shape mismatch") as err:
        LOADERS[family](folder)
    assert "config implies" in str(err.value)


def test_a_corrupt_weights_file_is_a_kiln_error(tmp_path):
    folder = _save(_tiny("bert"), tmp_path)
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(KilnValueError, match="cannot read .* as safetensors"):
        load_hf_bert(folder)
