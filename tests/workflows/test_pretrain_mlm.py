"""Masked-LM pre-training (kiln/workflows/pretrain_mlm.py): BERT's masking, a step-capped run on
kiln's fit/AdamW/schedules checked against a hand-written torch step, and transfer to a classifier."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kiln
from kiln.errors import KilnTypeError, KilnValueError
from kiln.losses import SparseCategoricalCrossentropy
from kiln.workflows.pretrain_mlm import MaskedBatches, mask_tokens, pretrain_mlm
from kiln.zoo.bert import BertConfig, BertForClassification, BertForMaskedLM
from kiln.zoo.tokenizers import BPETokenizer

TEXTS = ["the cat sat on the mat"] * 50
STEPS = 300  # gensim test: ~20 s on a quiet 2-core machine, ~3 min on a loaded one; same result either way


@pytest.fixture(scope="module")
def tok():
    return BPETokenizer(vocab_size=300).fit(["the cat sat on the mat", "a dog sat on a log"] * 20)


def test_mask_tokens_follows_berts_80_10_10_rule():
    ids = torch.randint(4, 50, (64, 32))
    ids[:, 0] = 2
    corrupted, targets = mask_tokens(ids, torch.ones_like(ids), 50, mask_id=1, generator=torch.Generator().manual_seed(0))
    picked = targets != -100
    assert not picked[:, 0].any() and 0.1 < picked.float().mean() < 0.2  # 15%, never <bos>
    assert (targets[picked] == ids[picked]).all() and (corrupted[~picked] == ids[~picked]).all()
    assert 0.7 < (corrupted[picked] == 1).float().mean() < 0.9  # 80% become [MASK]


def test_masked_batches_depend_only_on_seed_and_index():
    windows = torch.arange(4, 4 + 10 * 8).view(10, 8) % 40 + 4
    batches = MaskedBatches(windows, length=3, batch_size=4, vocab_size=50, mask_id=1, mask_prob=0.3, seed=7)
    again = MaskedBatches(windows, length=3, batch_size=4, vocab_size=50, mask_id=1, mask_prob=0.3, seed=7)
    assert len(batches) == 3
    for i in (2, 0, 1):  # any order: fit may read a batch sequence shuffled
        assert all(torch.equal(a, b) for a, b in zip(batches[i], again[i]))
    assert not torch.equal(batches[0][0], batches[1][0])
    with pytest.raises(IndexError):
        batches[3]


def test_pretraining_takes_exactly_the_steps_asked_and_lowers_the_held_out_loss(tok):
    mlm, history = pretrain_mlm(dict(hidden=32, layers=1, heads=2, intermediate=64), TEXTS, tok, steps=30,
                                seq_len=16, batch_size=8, learning_rate=3e-3, num_threads=1)
    assert history["steps"] == 30 and mlm.optimizer.iterations == 30  # a step cap, not a wall-clock one
    assert history["loss_after"] < history["loss_before"]  # measured 5.64 -> 3.10
    assert not mlm.training
    # it ran on kiln's optimizer and schedule: warm-up to the peak rate, then linear decay to 0
    assert isinstance(mlm.optimizer, kiln.optimizers.AdamW)
    schedule = mlm.optimizer.get_config()["learning_rate"]
    assert schedule["class_name"] == "LinearWarmup" and schedule["config"]["warmup_steps"] == 1
    rebuilt = kiln.optimizers.schedules.deserialize(schedule)
    assert rebuilt(0) == pytest.approx(3e-3) and rebuilt(15) == pytest.approx(3e-3 * 15 / 29) and rebuilt(30) == 0.0

    clf = BertForClassification.from_pretrained_encoder(mlm, num_classes=3)
    assert clf.config.num_classes == 3 and clf(torch.tensor([[2, 5, 6]])).shape == (1, 3)
    assert torch.equal(clf.embeddings.word.weight, mlm.embeddings.word.weight)
    assert torch.equal(clf.encoder[0].fc_in.weight, mlm.encoder[0].fc_in.weight)


def test_one_step_equals_a_hand_written_torch_adamw_step(tok):
    """Reference: the same initial model, the same first masked batch, torch's AdamW with the
    documented settings (lr at step 0 = the peak when warm-up is 1 step, weight decay 0.01,
    eps 1e-8, global norm clipped at 1.0) and cross-entropy over the masked positions."""
    config = dict(hidden=32, layers=1, heads=2, intermediate=64, dropout=0.0)
    fields = {**config, "vocab_size": tok.vocab_size, "max_length": 16}
    torch.manual_seed(3)
    reference = BertForMaskedLM(BertConfig(**fields))
    mlm, history = pretrain_mlm(config, TEXTS, tok, steps=1, seq_len=16, batch_size=8, learning_rate=1e-2, seed=3,
                                device="cpu", num_threads=1)
    assert history["steps"] == 1

    stream = [t for text in TEXTS for t in tok.encode(text, add_eos=True)]
    n = len(stream) // 15
    windows = torch.cat([torch.full((n, 1), tok.bos_id), torch.tensor(stream[:n * 15]).view(n, 15)], dim=1)
    ids, labels = MaskedBatches(windows, 1, 8, tok.vocab_size, 1, 0.15, seed=3 + 1)[0]
    optimizer = torch.optim.AdamW(reference.parameters(), lr=1e-2, weight_decay=0.01, eps=1e-8)
    reference.train()
    loss = F.cross_entropy(reference(ids).flatten(0, 1), labels.flatten(), ignore_index=-100)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(reference.parameters(), 1.0)
    optimizer.step()
    assert history["loss"] == pytest.approx(float(loss.detach()), rel=1e-5)
    for (name, expected), actual in zip(reference.state_dict().items(), mlm.state_dict().values()):
        torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-6, msg=name)


def test_bad_arguments_name_the_value_and_the_fix(tok):
    with pytest.raises(KilnValueError, match=r"`steps`, expected a positive integer. Received: steps=0"):
        pretrain_mlm({}, TEXTS, tok, steps=0)
    with pytest.raises(KilnValueError, match=r"`mask_prob`.*Received: mask_prob=0.0"):
        pretrain_mlm({}, TEXTS, tok, steps=1, mask_prob=0.0)
    with pytest.raises(KilnTypeError, match="BertForMaskedLM, a BertConfig or a dict.*Received: str"):
        pretrain_mlm("bert", TEXTS, tok, steps=1)
    with pytest.raises(KilnValueError, match="fewer than one window of 64"):
        pretrain_mlm({}, ["a cat"], tok, steps=1, seq_len=64)
    with pytest.raises(KilnValueError, match="too small for the tokenizer"):
        pretrain_mlm(BertForMaskedLM(BertConfig(vocab_size=10, hidden=32, heads=2)), TEXTS, tok, steps=1)


@pytest.mark.slow
def test_bert_pretrained_with_mlm_classifies_gensim_polarity():
    """MLM pre-training on gensim's news text, then fine-tuning on 160 polarity sentences."""
    from gensim.test.utils import datapath
    from sklearn.model_selection import train_test_split

    from kiln.data import load_bundled

    frame = load_bundled("gensim:polarity")
    classes = sorted(frame["label"].unique())  # "neg", "pos"
    texts = list(frame["text"])
    labels = np.array([classes.index(label) for label in frame["label"]])
    train_idx, test_idx = train_test_split(np.arange(len(texts)), test_size=0.2, stratify=labels,
                                           random_state=0)
    train_texts = [texts[i] for i in train_idx]
    # Unlabelled text: 299 news articles, lower-cased like the polarity sentences (head500.noblanks.cor
    # is stemmed and stop-word-free, so it was not used), plus the training sentences themselves.
    with open(datapath("lee_background.cor"), encoding="utf-8", errors="replace") as f:
        corpus = f.read().lower().splitlines()
    tok = BPETokenizer(vocab_size=2000).fit(corpus + train_texts * 5)
    T = 48
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is faster, and far faster on a busy machine
    try:
        # Capped by steps, not wall time: the result no longer depends on how busy the machine is.
        mlm, history = pretrain_mlm(dict(hidden=64, layers=2, heads=2, intermediate=256), corpus + train_texts * 3,
                                    tok, steps=STEPS, seq_len=T, batch_size=32, learning_rate=2e-3, seed=0,
                                    num_threads=1)

        def batch(indices):
            ids = torch.zeros(len(indices), T, dtype=torch.long)
            mask = torch.zeros(len(indices), T, dtype=torch.long)
            for row, i in enumerate(indices):
                encoded = tok.encode(texts[i], add_bos=True)[:T]  # <bos> plays [CLS]
                ids[row, :len(encoded)] = torch.tensor(encoded)
                mask[row, :len(encoded)] = 1
            return {"input_ids": ids, "attention_mask": mask}, torch.as_tensor(labels[indices]).long()

        x_train, y_train = batch(train_idx)
        x_test, y_test = batch(test_idx)
        accuracies = []
        for seed in range(3):
            torch.manual_seed(seed)
            model = BertForClassification.from_pretrained_encoder(mlm, num_classes=len(classes))
            model.compile(optimizer=kiln.optimizers.Adam(learning_rate=1e-3),
                          loss=SparseCategoricalCrossentropy(from_logits=True))
            model.fit(x_train, y_train, batch_size=16, epochs=10, verbose=0)
            model.eval()
            with torch.no_grad():
                accuracies.append(float((model(x_test).argmax(-1) == y_test).float().mean()))
    finally:
        torch.set_num_threads(threads)
    print(f"\nMLM loss {history['loss_before']:.2f} -> {history['loss_after']:.2f} in {history['steps']} steps "
          f"({history['seconds']:.0f} s); polarity test accuracy per seed {accuracies}, "
          f"mean {np.mean(accuracies):.3f} (majority class 0.5)")
    assert history["steps"] == STEPS
    assert history["loss_after"] < history["loss_before"] - 1.0  # measured 7.62 -> 6.41 (300 steps, seed 0)
    # Negative result, reported not asserted: MLM pre-training on 360 KB of news text only brings
    # the MLM loss near the unigram level, and fine-tuning on 160 sentences stays at chance -- as
    # does every model trained only on these sentences (TF-IDF + LR 49% in 5-fold CV,
    # examples/text_classification_cv.py); test_bert_recipe_classifies_newsgroup_posts is the learning check.
