"""Text models of the zoo: GPT, BERT and the tokenizers, checked against Hugging Face."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import kiln
from kiln.losses import SparseCategoricalCrossentropy
from kiln.zoo.gpt import GPT, GPTConfig, gpt, load_hf_gpt2


def _next_token_batch(vocab=20, B=4, T=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, vocab, (B, T + 1), generator=g)
    return tokens[:, :-1], tokens[:, 1:]


# ---------------------------------------------------------------------- GPT
def test_gpt_shapes_and_builders():
    model = gpt(vocab_size=30, block_size=16, n_layer=2, n_head=2, n_embd=32)
    x, _ = _next_token_batch(vocab=30, T=16)
    assert model(x).shape == (4, 16, 30)
    assert kiln.zoo.get("gpt_tiny")(vocab_size=11)(x[:, :5] % 11).shape == (4, 5, 11)
    with pytest.raises(kiln.errors.KilnValueError, match="block_size"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(kiln.errors.KilnValueError, match="n_embd"):
        GPTConfig(n_embd=30, n_head=4)


def test_gpt_overfits_one_batch():
    torch.manual_seed(0)
    model = gpt(vocab_size=20, block_size=16, n_layer=2, n_head=2, n_embd=32)
    x, y = _next_token_batch()
    model.compile(optimizer=kiln.optimizers.Adam(learning_rate=3e-3),
                  loss=SparseCategoricalCrossentropy(from_logits=True), num_threads=None)
    history = model.fit(x, y, batch_size=4, epochs=150, verbose=0)
    losses = history.history["loss"]
    assert losses[0] > 2.5 and losses[-1] < 0.1


def test_gpt_save_load_identical_logits(tmp_path):
    torch.manual_seed(0)
    model = gpt(vocab_size=20, block_size=16, n_layer=2, n_head=2, n_embd=32)
    x, _ = _next_token_batch()
    model.eval()
    before = model(x)
    model.save(tmp_path / "gpt.kiln")
    loaded = kiln.models.load_model(tmp_path / "gpt.kiln")
    assert isinstance(loaded, GPT) and loaded.config == model.config
    loaded.eval()
    torch.testing.assert_close(loaded(x), before, rtol=0, atol=0)


@pytest.fixture(scope="module")
def small_gpt():
    torch.manual_seed(1)
    return gpt(vocab_size=20, block_size=12, n_layer=2, n_head=2, n_embd=32).eval()


def test_gpt_generate_seed_determinism(small_gpt):
    prompt = torch.tensor([[1, 2, 3], [4, 5, 6]])
    a = small_gpt.generate(prompt, 8, temperature=1.0, seed=7)
    b = small_gpt.generate(prompt, 8, temperature=1.0, seed=7)
    assert a.shape == (2, 11) and torch.equal(a, b)
    assert torch.equal(a[:, :3], prompt)
    others = [small_gpt.generate(prompt, 8, seed=s) for s in range(5)]
    assert any(not torch.equal(a, o) for o in others)


def test_gpt_greedy_is_argmax_chain(small_gpt):
    prompt = torch.tensor([[3, 1, 4]])
    out = small_gpt.generate(prompt, 6, temperature=0)
    seq = prompt
    for _ in range(6):
        seq = torch.cat([seq, small_gpt(seq)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, seq)


@pytest.mark.parametrize("kwargs", [dict(temperature=0), dict(temperature=0.9, top_k=5, seed=3),
                                    dict(temperature=1.0, top_p=0.8, seed=4)])
def test_gpt_kv_cache_equals_no_cache(small_gpt, kwargs):
    # 3 + 15 tokens passes block_size 12: the window slides and the cache must give way.
    prompt = torch.tensor([[1, 2, 3], [7, 8, 9]])
    with_cache = small_gpt.generate(prompt, 15, use_cache=True, **kwargs)
    without = small_gpt.generate(prompt, 15, use_cache=False, **kwargs)
    assert torch.equal(with_cache, without)


def test_gpt_kv_cache_logits_match_full_forward(small_gpt):
    x = torch.tensor([[1, 2, 3, 4, 5, 6, 7]])
    full, _ = small_gpt._forward(x)
    first, past = small_gpt._forward(x[:, :4])
    rest, _ = small_gpt._forward(x[:, 4:], past)  # 3 new tokens at once over a cache
    torch.testing.assert_close(torch.cat([first, rest], dim=1), full, rtol=1e-5, atol=1e-5)


def test_gpt_stop_tokens_end_each_row(small_gpt):
    prompt = torch.tensor([[1, 2, 3], [4, 5, 6]])
    free = small_gpt.generate(prompt, 10, temperature=0)
    stop = int(free[0, 5])  # a token row 0 emits greedily
    out = small_gpt.generate(prompt, 10, temperature=0, stop_tokens=[stop])
    row = out[0, 3:].tolist()
    first = row.index(stop)
    assert row[:first] == free[0, 3:3 + first].tolist()
    assert all(t == stop for t in row[first:])  # padded with the stop token after finishing
    # A row that stops ends the whole generation once every row has finished.
    single = small_gpt.generate(prompt[:1], 10, temperature=0, stop_tokens=[stop])
    assert single.shape[1] == 3 + first + 1


def test_gpt_top_k_and_top_p_restrict_candidates(small_gpt):
    prompt = torch.tensor([[1, 2, 3]])
    logits = small_gpt(prompt)[0, -1]
    top3 = set(torch.topk(logits, 3).indices.tolist())
    seen_k = {int(small_gpt.generate(prompt, 1, top_k=3, seed=s)[0, -1]) for s in range(60)}
    assert seen_k <= top3 and len(seen_k) > 1
    probs, order = logits.softmax(-1).sort(descending=True)
    n = int((probs.cumsum(0) < 0.5).sum()) + 1  # smallest prefix reaching 0.5
    nucleus = set(order[:n].tolist())
    seen_p = {int(small_gpt.generate(prompt, 1, top_p=0.5, seed=s)[0, -1]) for s in range(60)}
    assert seen_p <= nucleus
    with pytest.raises(kiln.errors.KilnValueError, match="top_p"):
        small_gpt.generate(prompt, 1, top_p=1.5)


def test_gpt_matches_hf_gpt2(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        n_embd=32, n_layer=2, n_head=2, vocab_size=50, n_positions=32)).eval()
    hf.save_pretrained(tmp_path)
    model = load_hf_gpt2(tmp_path)
    x = torch.randint(0, 50, (3, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = hf(x).logits
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)
    prompt = x[:2, :5]
    with torch.no_grad():
        hf_tokens = hf.generate(prompt, max_new_tokens=10, do_sample=False, pad_token_id=0,
                                attention_mask=torch.ones_like(prompt))
    assert torch.equal(model.generate(prompt, 10, temperature=0), hf_tokens)


# ---------------------------------------------------------------------- BERT
from kiln.zoo.bert import BertConfig, BertForClassification, BertForMaskedLM, bert, bert_tiny, load_hf_bert


def test_bert_shapes_and_inputs():
    model = bert(vocab_size=40, num_classes=3, hidden=32, layers=2, heads=2, intermediate=64, max_length=16).eval()
    ids = torch.randint(1, 40, (4, 10), generator=torch.Generator().manual_seed(0))
    assert model(ids).shape == (4, 3)
    full = model({"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)})
    torch.testing.assert_close(full, model(ids))
    assert bert_tiny(40, 2)(ids).shape == (4, 2)
    assert kiln.zoo.get("bert")(vocab_size=40, num_classes=2)(ids).shape == (4, 2)
    mlm = BertForMaskedLM(BertConfig(vocab_size=40, hidden=32, heads=2, intermediate=64))
    assert mlm(ids).shape == (4, 10, 40)
    with pytest.raises(kiln.errors.KilnValueError, match="hidden"):
        BertConfig(hidden=30, heads=4)
    with pytest.raises(kiln.errors.KilnValueError, match="max_length"):
        model(torch.zeros(1, 17, dtype=torch.long))


def test_bert_padding_mask_hides_padding():
    model = bert(vocab_size=40, num_classes=2, hidden=32, heads=2, intermediate=64, max_length=16).eval()
    ids = torch.tensor([[2, 5, 7, 9]])
    padded = torch.tensor([[2, 5, 7, 9, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0, 0]])
    torch.testing.assert_close(model({"input_ids": padded, "attention_mask": mask}), model(ids),
                               rtol=1e-5, atol=1e-5)


def test_bert_pad_id_masks_padding_of_bare_ids_and_mean_pooling_ignores_it():
    torch.manual_seed(0)
    model = bert(vocab_size=40, num_classes=2, hidden=32, heads=2, intermediate=64, max_length=16).eval()
    assert model.config.pad_id == 0  # kiln's text features pad with 0
    ids, padded = torch.tensor([[2, 5, 7, 9]]), torch.tensor([[2, 5, 7, 9, 0, 0, 0]])
    torch.testing.assert_close(model(padded), model(ids), rtol=1e-5, atol=1e-5)
    # pad_id=None attends everywhere (Hugging Face's behaviour): padding changes the answer.
    unmasked = BertForClassification(BertConfig(**{**vars(model.config), "pad_id": None})).eval()
    unmasked.load_state_dict(model.state_dict())
    seen_padding, without = unmasked.encode(padded)[0][:, :4], unmasked.encode(ids)[0]
    assert (seen_padding - without).abs().max() > 1e-3
    mean = BertForClassification(BertConfig(**{**vars(model.config), "pooling": "mean"})).eval()
    mean.load_state_dict(model.state_dict())
    torch.testing.assert_close(mean(padded), mean(ids), rtol=1e-5, atol=1e-5)
    hidden, pooled = mean.encode(ids)
    torch.testing.assert_close(pooled, torch.tanh(mean.pooler(hidden.mean(1))))
    empty = model(torch.zeros(2, 5, dtype=torch.long))  # an empty text: all padding, still finite
    assert torch.isfinite(empty).all()
    with pytest.raises(kiln.errors.KilnValueError, match="pooling"):
        BertConfig(pooling="max")


def test_bert_overfits_one_batch_with_dict_inputs():
    torch.manual_seed(0)
    model = bert(vocab_size=30, num_classes=3, hidden=32, heads=2, intermediate=64, max_length=16, dropout=0.0)
    ids = torch.randint(1, 30, (8, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[::2, 8:] = 0
    y = torch.arange(8) % 3
    model.compile(optimizer=kiln.optimizers.Adam(learning_rate=3e-3),
                  loss=SparseCategoricalCrossentropy(from_logits=True), num_threads=None)
    history = model.fit({"input_ids": ids, "attention_mask": mask}, y, batch_size=8, epochs=80, verbose=0)
    assert history.history["loss"][-1] < 0.05


def test_bert_mlm_overfits_one_batch():
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=20, hidden=32, heads=2, intermediate=64, max_length=16))
    x, y = _next_token_batch(vocab=20, B=4, T=8)
    model.compile(optimizer=kiln.optimizers.Adam(learning_rate=3e-3),
                  loss=SparseCategoricalCrossentropy(from_logits=True), num_threads=None)
    history = model.fit(x, y, batch_size=4, epochs=100, verbose=0)
    assert history.history["loss"][-1] < 0.1


@pytest.mark.parametrize("cls", [BertForClassification, BertForMaskedLM])
def test_bert_save_load_identical_logits(tmp_path, cls):
    torch.manual_seed(0)
    model = cls(BertConfig(vocab_size=30, hidden=32, heads=2, intermediate=64, max_length=16, num_classes=3)).eval()
    ids = torch.randint(0, 30, (2, 9), generator=torch.Generator().manual_seed(0))
    before = model(ids)
    model.save(tmp_path / "bert")
    loaded = kiln.models.load_model(tmp_path / "bert").eval()
    assert type(loaded) is cls and loaded.config == model.config
    torch.testing.assert_close(loaded(ids), before, rtol=0, atol=0)


@pytest.mark.parametrize("task", ["classification", "mlm"])
def test_bert_matches_hf(tmp_path, task):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    hf_config = transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                        intermediate_size=64, vocab_size=60, num_labels=3)
    hf_cls = transformers.BertForSequenceClassification if task == "classification" else transformers.BertForMaskedLM
    hf = hf_cls(hf_config).eval()
    hf.save_pretrained(tmp_path)
    model = load_hf_bert(tmp_path, task=task)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 60, (3, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    types = torch.zeros_like(ids)
    types[:, 6:] = 1
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
    got = model({"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
    if task == "mlm":  # padded positions' outputs are meaningless; compare the real ones
        keep = mask.bool()
        got, expected = got[keep], expected[keep]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)



def test_bert_weight_names_did_not_change_with_the_block_rename():
    """The encoder block class is EncoderBlock (it used to be Layer, shadowing kiln.layers.Layer);
    the state-dict keys, which saved models and the HF loader use, are those written at e4563e3."""
    import importlib

    bert_module = importlib.import_module("kiln.zoo.bert")
    assert not hasattr(bert_module, "Layer") and not hasattr(bert_module, "pretrain_mlm")
    config = BertConfig(vocab_size=10, hidden=8, heads=2, intermediate=16, layers=1, max_length=4)
    block = [f"encoder.0.{name}.{p}" for name in ("attn.query", "attn.key", "attn.value", "attn.proj", "ln_1",
                                                   "fc_in", "fc_out", "ln_2") for p in ("weight", "bias")]
    embeddings = ["embeddings.word.weight", "embeddings.position.weight", "embeddings.token_type.weight",
                  "embeddings.ln.weight", "embeddings.ln.bias"]
    head = ["transform.weight", "transform.bias", "transform_ln.weight", "transform_ln.bias"]
    assert list(BertForMaskedLM(config).state_dict()) == [
        "decoder_bias", *embeddings, *block, "pooler.weight", "pooler.bias", *head]
    assert list(BertForClassification(config).state_dict())[-2:] == ["classifier.weight", "classifier.bias"]
    assert type(BertForMaskedLM(config).encoder[0]).__name__ == "EncoderBlock"


# ---------------------------------------------------------------------- tokenizers
from kiln.zoo.tokenizers import BPETokenizer, CharTokenizer

_TEXTS = ["the cat sat on the mat", "the dog sat on the log", "大模型创业的市场机遇"]


def test_char_tokenizer_round_trip_and_save(tmp_path):
    tok = CharTokenizer().fit(_TEXTS)
    assert tok.itos[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    ids = tok.encode("the cat", add_bos=True, add_eos=True)
    assert ids[0] == 2 and ids[-1] == 3 and min(ids[1:-1]) >= 4
    assert tok.decode(ids) == "the cat"
    assert tok.encode("z") == [1]  # unseen -> <unk>
    assert tok.vocab_size == 4 + len(set("".join(_TEXTS)))
    tok.save(tmp_path)
    again = CharTokenizer.load(tmp_path)
    assert again.encode("大模型 sat") == tok.encode("大模型 sat") and again.vocab_size == tok.vocab_size


def test_bpe_tokenizer_round_trip_and_save(tmp_path):
    tok = BPETokenizer(vocab_size=300).fit(_TEXTS * 20)
    ids = tok.encode("the cat sat on the log")
    assert tok.decode(ids) == "the cat sat on the log"
    assert len(ids) < len("the cat sat on the log")  # merges happened
    assert tok.decode(tok.encode("大模型")) == "大模型"  # byte level: nothing is unknown
    assert tok.encode("<pad>") == [0]
    tok.save(tmp_path)
    again = BPETokenizer.load(tmp_path)
    assert again.encode("the mat") == tok.encode("the mat") and again.vocab_size == tok.vocab_size
    with pytest.raises(kiln.errors.KilnValueError, match="not trained"):
        BPETokenizer().encode("x")


# ---------------------------------------------------------------------- real data (slow)
def _seed_text() -> str:
    path = Path("/work/shared/seed.txt")
    if path.is_file():
        return path.read_text(encoding="utf-8")
    from gensim.test.utils import datapath
    return Path(datapath("lee_background.cor")).read_text(encoding="latin-1")


@pytest.mark.slow
def test_char_gpt_learns_the_seed_article():
    torch.manual_seed(0)
    text = _seed_text()
    split = int(0.9 * len(text))
    tok = CharTokenizer().fit(text[:split])
    train = torch.tensor(tok.encode(text[:split]))
    val = torch.tensor(tok.encode(text[split:]))
    # Baseline: cross-entropy of the validation characters under the training unigram frequencies.
    counts = torch.bincount(train, minlength=tok.vocab_size).double() + 1.0
    unigram = float(-(counts / counts.sum()).log()[val].mean())
    T = 64
    model = gpt(tok.vocab_size, block_size=T, n_layer=2, n_head=4, n_embd=128, dropout=0.1)
    model.compile(optimizer=kiln.optimizers.Adam(learning_rate=2e-3),
                  loss=SparseCategoricalCrossentropy(from_logits=True))
    starts = torch.randint(0, len(train) - T - 1, (300 * 32,))
    x = torch.stack([train[s:s + T] for s in starts])
    y = torch.stack([train[s + 1:s + T + 1] for s in starts])
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    vs = torch.arange(0, len(val) - T - 1, T)
    vx = torch.stack([val[s:s + T] for s in vs])
    vy = torch.stack([val[s + 1:s + T + 1] for s in vs])
    model.eval()
    with torch.no_grad():
        val_loss = float(torch.nn.functional.cross_entropy(model(vx).flatten(0, 1), vy.flatten()))
    sample = tok.decode(model.generate(vx[:1, :16], 60, temperature=0.8, top_k=20, seed=0)[0])
    print(f"\nval loss {val_loss:.3f} vs unigram baseline {unigram:.3f}; sample: {sample!r}")
    assert val_loss < 0.85 * unigram  # measured: 4.13 vs 5.26 (0.78x) with seed 0


@pytest.mark.slow
def test_bert_recipe_classifies_newsgroup_posts(tmp_path):
    """recipes/newsgroups_bert.yaml through `kiln train`: a BERT-style encoder from scratch on
    gensim's 200 Usenet posts (alt.atheism vs sci.space); accuracy on the 40 held-out posts."""
    import json

    from kiln.config import load_config
    from kiln.workflows.train import train
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "newsgroups_bert.yaml"
    config = load_config(recipe, [f"output_dir={tmp_path}"])
    run = Path(train(config, verbose=0).run_dir)
    evaluation = json.loads((run / "evaluation.json").read_text())
    accuracy = evaluation["test"]["accuracy"] if "test" in evaluation else evaluation["accuracy"]
    print(f"\nnewsgroups BERT test accuracy {accuracy:.3f} (chance 0.5; TF-IDF + LR 0.95 in 5-fold CV)")
    assert accuracy >= 0.75  # measured 0.90 (40 posts); chance 0.5


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_tokenizer_is_saved_with_the_model(tmp_path, kind):
    import kiln
    from kiln.zoo.tokenizers import BPETokenizer, CharTokenizer
    texts = ["the cat sat on the mat", "a dog sat on a log", "cats and dogs"] * 5
    tokenizer = (CharTokenizer() if kind == "char" else BPETokenizer(vocab_size=300)).fit(texts)
    model = kiln.zoo.get("gpt_tiny")(tokenizer.vocab_size)
    model.tokenizer = tokenizer
    model.save(tmp_path / "m.keras")
    loaded = kiln.load_model(tmp_path / "m.keras")
    assert type(loaded.tokenizer) is type(tokenizer)
    assert loaded.tokenizer.encode("the cat") == tokenizer.encode("the cat")
    assert loaded.tokenizer.decode(tokenizer.encode("a dog")) == tokenizer.decode(tokenizer.encode("a dog"))
