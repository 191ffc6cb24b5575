"""Masked-LM pre-training of a kiln BERT on unlabelled text, on kiln's own ``fit``.

A workflow, not a component: it uses the zoo's ``BertForMaskedLM``, kiln's ``AdamW``, a
``LinearWarmup`` + ``PolynomialDecay`` schedule and ``Model.fit``/``evaluate``; the zoo never
imports it. The run is capped by a number of optimisation steps, never by wall time, so the
same call gives the same model on a quiet or a busy machine.

    from kiln.workflows.pretrain_mlm import pretrain_mlm
    mlm, history = pretrain_mlm(dict(hidden=64, layers=2, heads=2, intermediate=256), texts, tokenizer,
                                steps=800, seq_len=48)
    classifier = BertForClassification.from_pretrained_encoder(mlm, num_classes=2)

Features: BERT's 80/10/10 masking drawn afresh for every batch (``mask_tokens``), a linear
warm-up over the first 5% of the steps then linear decay to 0, global gradient clipping at 1.0,
and a fixed held-out set of masked batches on which the loss is measured before and after.

Raises:
    KilnValueError: a model too small for the tokenizer or ``seq_len``, texts shorter than one
        window, or an invalid ``steps``/``batch_size``/``seq_len``/``mask_prob``/``eval_batches``.
    KilnTypeError: ``model_or_config`` that is neither a ``BertForMaskedLM``, a ``BertConfig`` nor a dict.
"""

from __future__ import annotations

import time
from dataclasses import asdict

import torch

from kiln.callbacks import Callback
from kiln.errors import KilnTypeError, KilnValueError
from kiln.losses import SparseCategoricalCrossentropy
from kiln.optimizers import AdamW
from kiln.optimizers.schedules import LinearWarmup, PolynomialDecay
from kiln.utils.py_dataset import PyDataset
from kiln.zoo.bert import BertConfig, BertForMaskedLM

__all__ = ["mask_tokens", "MaskedBatches", "pretrain_mlm"]

IGNORE = -100  # label of the positions that add no loss (not picked for masking)


def mask_tokens(input_ids, attention_mask, vocab_size, mask_id, generator=None, mask_prob=0.15,
                special_ids=(0, 1, 2, 3)):
    """BERT's masking: pick ``mask_prob`` of the real tokens; of those 80% -> ``mask_id``,
    10% -> a random token, 10% unchanged. Returns (corrupted ids, labels with -100 where not picked)."""
    ids = input_ids.clone()
    special = torch.zeros_like(ids, dtype=torch.bool)
    for i in special_ids:
        special |= ids == i
    candidates = attention_mask.bool() & ~special
    picked = (torch.rand(ids.shape, generator=generator) < mask_prob) & candidates
    labels = torch.where(picked, input_ids, torch.full_like(input_ids, -100))
    roll = torch.rand(ids.shape, generator=generator)
    ids[picked & (roll < 0.8)] = mask_id
    random_slots = picked & (roll >= 0.8) & (roll < 0.9)
    ids[random_slots] = torch.randint(len(special_ids), vocab_size, ids.shape, generator=generator)[random_slots]
    return ids, labels


class MaskedBatches(PyDataset):
    """``length`` batches of windows drawn at random, each masked afresh: batch ``i`` is
    ``(corrupted ids, labels)``, each (batch_size, seq_len).

    Why a batch sequence: ``fit`` takes it as it takes any Keras ``PyDataset``, and batch ``i``
    depends only on ``(seed, i)``, so a run is reproducible whatever order fit reads it in.

    Args:
        windows: (n, seq_len) token ids to draw rows from.
        length: the number of batches (one epoch of ``fit``).
        batch_size, vocab_size, mask_id, mask_prob: as ``mask_tokens``.
        seed: batches of different seeds are independent.
    """

    def __init__(self, windows, length, batch_size, vocab_size, mask_id, mask_prob, seed):
        super().__init__()
        self.windows, self.length, self.batch_size = windows, length, batch_size
        self.vocab_size, self.mask_id, self.mask_prob, self.seed = vocab_size, mask_id, mask_prob, seed

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        if not 0 <= index < self.length:
            raise IndexError(index)
        generator = torch.Generator().manual_seed(self.seed * 2**32 + index)
        rows = self.windows[torch.randint(0, len(self.windows), (self.batch_size,), generator=generator)]
        return mask_tokens(rows, torch.ones_like(rows), self.vocab_size, self.mask_id, generator=generator,
                           mask_prob=self.mask_prob)


class _PrintEvery(Callback):
    """Print the running mean training loss every ``every`` steps (kiln's batch logs hold the mean so far)."""

    def __init__(self, every: int):
        super().__init__()
        self.every, self.start = every, time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if (batch + 1) % self.every == 0:
            print(f"mlm step {batch + 1}: loss {logs['loss']:.3f} ({time.perf_counter() - self.start:.0f} s)")


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise KilnValueError(f"Received an invalid value for `{name}`, expected a positive integer. "
                             f"Received: {name}={value!r}")


def _model(model_or_config, tokenizer, seq_len, seed) -> BertForMaskedLM:
    """The model to train: the one given, or a new one sized for the tokenizer and ``seq_len``."""
    if isinstance(model_or_config, BertForMaskedLM):
        model = model_or_config
    elif model_or_config is None or isinstance(model_or_config, (BertConfig, dict)):
        fields = asdict(model_or_config) if isinstance(model_or_config, BertConfig) else dict(model_or_config or {})
        fields["vocab_size"] = tokenizer.vocab_size
        fields["max_length"] = max(fields.get("max_length", seq_len), seq_len)
        torch.manual_seed(seed)
        model = BertForMaskedLM(BertConfig(**fields))
    else:
        raise KilnTypeError("`model_or_config` must be a BertForMaskedLM, a BertConfig or a dict of its fields. "
                            f"Received: {type(model_or_config).__name__}")
    if model.config.vocab_size < tokenizer.vocab_size or model.config.max_length < seq_len:
        raise KilnValueError(f"The model (vocab_size={model.config.vocab_size}, max_length="
                             f"{model.config.max_length}) is too small for the tokenizer "
                             f"(vocab_size={tokenizer.vocab_size}) or seq_len={seq_len}.")
    return model


def _windows(texts, tokenizer, seq_len) -> torch.Tensor:
    """Texts -> one token stream (``<eos>`` between texts) cut into (n, seq_len) windows, each
    starting with ``<bos>`` (BERT's [CLS])."""
    stream = []
    for text in texts:
        stream.extend(tokenizer.encode(text, add_eos=True))
    width = seq_len - 1
    n = len(stream) // width
    if n < 1:
        raise KilnValueError(f"The texts give {len(stream)} tokens, fewer than one window of {seq_len}.")
    windows = torch.tensor(stream[:n * width], dtype=torch.long).view(n, width)
    return torch.cat([torch.full((n, 1), tokenizer.bos_id, dtype=torch.long), windows], dim=1)  # (n, T)


def pretrain_mlm(model_or_config, texts, tokenizer, steps=1000, seq_len=64, batch_size=32,
                 learning_rate=1e-3, mask_prob=0.15, mask_id=None, seed=0, eval_batches=4, log_every=0,
                 device=None, num_threads="auto"):
    """Pre-train a BERT with the masked-LM objective on unlabelled ``texts``; returns (model, history).

    The texts are tokenized, joined into one stream and cut into windows of ``seq_len`` tokens
    (see the module docstring). Each of the ``steps`` steps masks a random batch of windows and
    takes an ``AdamW`` step (weight decay 0.01, global gradient norm clipped at 1.0, learning
    rate warmed up linearly over the first 5% of the steps, then decayed linearly to 0) on the
    cross-entropy at the masked positions, through ``model.fit``.

    Args:
        model_or_config: a ``BertForMaskedLM`` to continue training (it is compiled again), or a
            ``BertConfig`` / dict for a new one (``vocab_size`` is taken from the tokenizer).
        texts: iterable of strings.
        tokenizer: a fitted ``BPETokenizer`` or ``CharTokenizer`` (ids 0-3 are <pad>, <unk>, <bos>, <eos>).
        steps: (1000) optimisation steps; the run always takes exactly this many.
        seq_len, batch_size: (64, 32) window length and windows per step.
        learning_rate: (1e-3) the peak learning rate.
        mask_prob: (0.15) share of the tokens picked for prediction.
        mask_id: (None) the id used as [MASK]; default ``<unk>`` (id 1), which real text rarely produces.
        seed: (0) the new model's initialisation and every batch drawn.
        eval_batches: (4) fixed masked batches (drawn with their own seed) on which ``loss_before``
            and ``loss_after`` are measured, so the two figures are comparable.
        log_every: (0) print the running training loss every this many steps; 0 prints nothing.
        device: (None) as ``Model.compile``: CUDA when available, else the CPU.
        num_threads: ("auto") as ``Model.compile``; 1 suits a tiny model on a busy CPU.

    Returns:
        (model in eval mode, ``{"loss_before", "loss_after", "steps", "seconds", "loss"}``), where
        ``loss`` is the mean training loss over the steps and ``seconds`` is reported, not used.

    Example:
        >>> mlm, history = pretrain_mlm(dict(hidden=32, layers=1), texts, tokenizer, steps=30, seq_len=16)
        >>> history["loss_after"] < history["loss_before"]
        True
    """
    for name, value in (("steps", steps), ("seq_len", seq_len), ("batch_size", batch_size),
                        ("eval_batches", eval_batches)):
        _positive_int(name, value)
    if not 0.0 < mask_prob <= 1.0:
        raise KilnValueError(f"Received an invalid value for `mask_prob`, expected a share in (0, 1]. "
                             f"Received: mask_prob={mask_prob!r}")
    model = _model(model_or_config, tokenizer, seq_len, seed)
    mask_id = 1 if mask_id is None else mask_id
    windows = _windows(texts, tokenizer, seq_len)
    vocab = model.config.vocab_size
    # The held-out batches use seed + 12345, the training batches seed + 1: never the same draws.
    train = MaskedBatches(windows, steps, batch_size, vocab, mask_id, mask_prob, seed + 1)
    held_out = MaskedBatches(windows, eval_batches, batch_size, vocab, mask_id, mask_prob, seed + 12345)

    warmup = max(1, steps // 20)
    schedule = LinearWarmup(PolynomialDecay(learning_rate, decay_steps=max(1, steps - warmup), end_learning_rate=0.0),
                            warmup_steps=warmup)
    optimizer = AdamW(learning_rate=schedule, weight_decay=0.01, epsilon=1e-8, global_clipnorm=1.0)
    model.compile(optimizer=optimizer, loss=SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE),
                  device=device, num_threads=num_threads)

    loss_before = model.evaluate(held_out, verbose=0)
    start = time.perf_counter()
    fit = model.fit(train, epochs=1, shuffle=False, verbose=0,
                    callbacks=[_PrintEvery(log_every)] if log_every else None)
    seconds = time.perf_counter() - start
    history = {"loss_before": loss_before, "loss_after": model.evaluate(held_out, verbose=0),
               "steps": optimizer.iterations, "seconds": seconds, "loss": fit.history["loss"][0]}
    return model.eval(), history
