"""A BERT-style encoder in one file, with a classification head and a masked-LM head.

Token + position + segment embeddings, post-LayerNorm blocks as in the BERT paper
(``x = LN(x + attn(x)); x = LN(x + mlp(x))``), GELU (erf) MLP, and a pooler (dense + tanh on
the first token). Inputs are token ids (B, T) or a dict with ``input_ids``, ``attention_mask``
(1 = attend, 0 = padding) and ``token_type_ids``.

    model = kiln.zoo.bert(vocab_size=1000, num_classes=2)
    model.compile(optimizer="adam", loss=kiln.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit({"input_ids": ids, "attention_mask": mask}, labels)
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

import kiln
from kiln.errors import KilnTypeError, KilnValueError
from kiln.zoo.tokenizer_assets import SavesTokenizer

__all__ = ["BertConfig", "Bert", "BertForClassification", "BertForMaskedLM", "bert", "bert_tiny",
           "load_hf_bert"]


@dataclass
class BertConfig:
    vocab_size: int = 30522
    hidden: int = 128
    layers: int = 2
    heads: int = 2              # hidden must divide by heads
    intermediate: int = 512     # 4 x hidden, as in BERT
    max_length: int = 128       # rows of the position table
    type_vocab_size: int = 2    # segments A and B
    dropout: float = 0.1        # BERT's hidden and attention dropout
    layer_norm_eps: float = 1e-12   # BERT's value
    num_classes: int = 2        # used by BertForClassification only
    pad_id: int | None = None   # without an attention_mask, positions holding this id are not attended
                                # (kiln's text features pad with 0); None: attend everywhere, as HF does
    pooling: str = "cls"        # "cls": the first position (BERT); "mean": the average of attended positions

    def __post_init__(self):
        problems = []
        for field in ("vocab_size", "hidden", "layers", "heads", "intermediate", "max_length",
                      "type_vocab_size", "num_classes"):
            value = getattr(self, field)
            if not isinstance(value, int) or value <= 0:
                problems.append(f"`{field}` must be a positive integer. Received: {field}={value!r}")
        if not problems and self.hidden % self.heads:
            problems.append(f"`hidden` must be divisible by `heads`. Received: hidden={self.hidden}, "
                            f"heads={self.heads}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"`dropout` must be in [0, 1). Received: dropout={self.dropout!r}")
        if self.pad_id is not None and (not isinstance(self.pad_id, int) or self.pad_id < 0):
            problems.append(f"`pad_id` must be None or a token id >= 0. Received: pad_id={self.pad_id!r}")
        if self.pooling not in ("cls", "mean"):
            problems.append(f"`pooling` must be 'cls' or 'mean'. Received: pooling={self.pooling!r}")
        if problems:
            raise KilnValueError("Invalid BertConfig:\n  " + "\n  ".join(problems))


class Embeddings(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.word = nn.Embedding(config.vocab_size, config.hidden)
        self.position = nn.Embedding(config.max_length, config.hidden)
        self.token_type = nn.Embedding(config.type_vocab_size, config.hidden)
        self.ln = nn.LayerNorm(config.hidden, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids, token_type_ids):
        T = input_ids.size(1)
        pos = torch.arange(T, device=input_ids.device)  # (T,)
        x = self.word(input_ids) + self.position(pos) + self.token_type(token_type_ids)  # (B, T, C)
        return self.dropout(self.ln(x))


class SelfAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.query = nn.Linear(config.hidden, config.hidden)
        self.key = nn.Linear(config.hidden, config.hidden)
        self.value = nn.Linear(config.hidden, config.hidden)
        self.proj = nn.Linear(config.hidden, config.hidden)
        self.heads, self.dropout = config.heads, config.dropout

    def forward(self, x, mask):
        """x (B, T, C); mask (B, 1, 1, T) bool, True = attend."""
        B, T, C = x.size()
        hs = C // self.heads
        q = self.query(x).view(B, T, self.heads, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = self.key(x).view(B, T, self.heads, hs).transpose(1, 2)    # (B, nh, T, hs)
        v = self.value(x).view(B, T, self.heads, hs).transpose(1, 2)  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.proj(y)


class EncoderBlock(nn.Module):
    """One post-LN encoder block, as in BERT. (Not named ``Layer``: that would shadow
    ``kiln.layers.Layer`` for a reader; the state-dict keys, ``encoder.{i}.*``, do not name the class.)"""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attn = SelfAttention(config)
        self.ln_1 = nn.LayerNorm(config.hidden, eps=config.layer_norm_eps)
        self.fc_in = nn.Linear(config.hidden, config.intermediate)
        self.fc_out = nn.Linear(config.intermediate, config.hidden)
        self.ln_2 = nn.LayerNorm(config.hidden, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, mask):
        x = self.ln_1(x + self.dropout(self.attn(x, mask)))
        return self.ln_2(x + self.dropout(self.fc_out(F.gelu(self.fc_in(x)))))  # exact (erf) GELU


class Bert(SavesTokenizer, kiln.Model):
    """The BERT encoder: inputs -> hidden states (B, T, hidden); ``encode`` adds the pooled (B, hidden).

    Args:
        config: a ``BertConfig`` (or a dict of its fields); default ``BertConfig()``.
    """

    def __init__(self, config: BertConfig | dict | None = None, **kwargs):
        kwargs.setdefault("name", "bert")
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = BertConfig(**config)
        self.config = config = config or BertConfig()
        self.embeddings = Embeddings(config)
        self.encoder = nn.ModuleList([EncoderBlock(config) for _ in range(config.layers)])
        self.pooler = nn.Linear(config.hidden, config.hidden)
        self.apply(_init_weights)

    def call(self, inputs):
        return self.encode(inputs)[0]

    def encode(self, inputs):
        input_ids, attention_mask, token_type_ids = _unpack(inputs, self.config)
        keep = attention_mask.bool()  # (B, T)
        empty = ~keep.any(dim=1, keepdim=True)  # (B, 1): an all-padding row (an empty text) ...
        first_slot = torch.zeros_like(keep)
        first_slot[:, 0] = True
        keep = keep | (empty & first_slot)  # ... attends to its first position, not to nothing (NaN)
        mask = keep[:, None, None, :]  # (B, 1, 1, T): every query sees the same keys
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, C)
        for layer in self.encoder:
            x = layer(x, mask)
        if self.config.pooling == "mean":
            weights = keep.unsqueeze(-1).to(x.dtype)  # (B, T, 1)
            first = (x * weights).sum(1) / weights.sum(1)  # (B, C): mean of the attended positions
        else:
            first = x[:, 0]  # (B, C): the [CLS] position
        return x, torch.tanh(self.pooler(first))

    def get_config(self) -> dict:
        return {"config": asdict(self.config), "name": self.name}

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        return cls(BertConfig(**config.pop("config")), **config)


class BertForClassification(Bert):
    """BERT + pooled output -> dropout -> Dense: inputs -> class logits (B, num_classes)."""

    def __init__(self, config: BertConfig | dict | None = None, **kwargs):
        kwargs.setdefault("name", "bert_for_classification")
        super().__init__(config, **kwargs)
        self.dropout = nn.Dropout(self.config.dropout)
        self.classifier = nn.Linear(self.config.hidden, self.config.num_classes)
        _init_weights(self.classifier)

    def call(self, inputs):
        _, pooled = self.encode(inputs)
        return self.classifier(self.dropout(pooled))  # (B, num_classes)

    @classmethod
    def from_pretrained_encoder(cls, encoder: Bert, num_classes: int, dropout: float | None = None,
                                **kwargs) -> "BertForClassification":
        """A classifier whose encoder (embeddings, layers, pooler) is copied from ``encoder``.

        ``encoder`` is any ``Bert`` (typically a ``BertForMaskedLM`` from
        ``kiln.workflows.pretrain_mlm.pretrain_mlm``); the classification head is freshly
        initialised for ``num_classes`` classes.
        """
        if not isinstance(encoder, Bert):
            raise KilnTypeError(f"`encoder` must be a kiln BERT model. Received: {type(encoder).__name__}")
        fields = asdict(encoder.config)
        fields["num_classes"] = num_classes
        if dropout is not None:
            fields["dropout"] = dropout
        model = cls(BertConfig(**fields), **kwargs)
        shared = {k: v for k, v in encoder.state_dict().items()
                  if k.split(".")[0] in ("embeddings", "encoder", "pooler")}
        missing, unexpected = model.load_state_dict(shared, strict=False)
        assert not unexpected and all(k.startswith("classifier.") for k in missing), (missing, unexpected)
        return model


class BertForMaskedLM(Bert):
    """BERT + transform (dense, GELU, LayerNorm) + tied decoder: inputs -> logits (B, T, vocab)."""

    def __init__(self, config: BertConfig | dict | None = None, **kwargs):
        kwargs.setdefault("name", "bert_for_masked_lm")
        super().__init__(config, **kwargs)
        c = self.config
        self.transform = nn.Linear(c.hidden, c.hidden)
        self.transform_ln = nn.LayerNorm(c.hidden, eps=c.layer_norm_eps)
        self.decoder_bias = nn.Parameter(torch.zeros(c.vocab_size))
        _init_weights(self.transform)

    def call(self, inputs):
        x, _ = self.encode(inputs)
        x = self.transform_ln(F.gelu(self.transform(x)))
        return F.linear(x, self.embeddings.word.weight, self.decoder_bias)  # (B, T, V), tied weights


def _init_weights(module):
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)  # BERT's initializer_range
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


def _unpack(inputs, config):
    """Token ids or a dict -> (input_ids, attention_mask, token_type_ids), each (B, T)."""
    if isinstance(inputs, dict):
        if "input_ids" not in inputs:
            raise KilnValueError(f"A dict input to BERT needs 'input_ids'. Received keys: {sorted(inputs)}")
        unknown = set(inputs) - {"input_ids", "attention_mask", "token_type_ids"}
        if unknown:
            raise KilnValueError(f"Unknown BERT inputs {sorted(unknown)}; expected 'input_ids', "
                                 f"'attention_mask', 'token_type_ids'.")
        input_ids = inputs["input_ids"]
        attention_mask = inputs.get("attention_mask")
        token_type_ids = inputs.get("token_type_ids")
    elif torch.is_tensor(inputs):
        input_ids, attention_mask, token_type_ids = inputs, None, None
    else:
        raise KilnTypeError(f"BERT takes token ids (B, T) or a dict of them. Received: {type(inputs).__name__}")
    input_ids = input_ids.long()
    if input_ids.dim() != 2:
        raise KilnValueError(f"`input_ids` must be (batch, length). Received shape {tuple(input_ids.shape)}")
    if input_ids.size(1) > config.max_length:
        raise KilnValueError(f"Sequence length {input_ids.size(1)} exceeds max_length={config.max_length}; "
                             f"truncate the inputs or build the model with a larger max_length.")
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids) if config.pad_id is None else input_ids != config.pad_id
    if token_type_ids is None:
        token_type_ids = torch.zeros_like(input_ids)
    return input_ids, attention_mask, token_type_ids.long()


def bert(vocab_size, num_classes, hidden=128, layers=2, heads=2, intermediate=512, max_length=128,
         dropout=0.1, pad_id=0, pooling="cls") -> BertForClassification:
    """A BERT classifier: token ids (B, T) or a dict of inputs -> logits (B, num_classes).

    ``pad_id=0`` (kiln's text features pad with id 0): given bare token ids, padding is not
    attended; pass ``None`` to attend to every position. ``pooling``: "cls" or "mean".

    Example: ``kiln.zoo.bert(vocab_size=1000, num_classes=2)``
    """
    return BertForClassification(BertConfig(vocab_size=vocab_size, hidden=hidden, layers=layers, heads=heads,
                                             intermediate=intermediate, max_length=max_length,
                                             num_classes=num_classes, dropout=dropout, pad_id=pad_id,
                                             pooling=pooling))


def bert_tiny(vocab_size, num_classes, max_length=128, dropout=0.1, pad_id=0, pooling="cls") -> BertForClassification:
    """A 2-layer, 64-wide BERT classifier for tests and small data."""
    return bert(vocab_size, num_classes, hidden=64, layers=2, heads=2, intermediate=256, max_length=max_length,
                dropout=dropout, pad_id=pad_id, pooling=pooling)


# ---------------------------------------------------------------------- Hugging Face checkpoints
# Hugging Face module (after the "bert." prefix) -> kiln module; "{i}" is the layer number.
_HF_ENCODER_NAMES = {
    "embeddings.word_embeddings": "embeddings.word",
    "embeddings.position_embeddings": "embeddings.position",
    "embeddings.token_type_embeddings": "embeddings.token_type",
    "embeddings.LayerNorm": "embeddings.ln",
    "encoder.layer.{i}.attention.self.query": "encoder.{i}.attn.query",
    "encoder.layer.{i}.attention.self.key": "encoder.{i}.attn.key",
    "encoder.layer.{i}.attention.self.value": "encoder.{i}.attn.value",
    "encoder.layer.{i}.attention.output.dense": "encoder.{i}.attn.proj",
    "encoder.layer.{i}.attention.output.LayerNorm": "encoder.{i}.ln_1",
    "encoder.layer.{i}.intermediate.dense": "encoder.{i}.fc_in",
    "encoder.layer.{i}.output.dense": "encoder.{i}.fc_out",
    "encoder.layer.{i}.output.LayerNorm": "encoder.{i}.ln_2",
    "pooler.dense": "pooler",
}
_HF_HEAD_NAMES = {
    "classification": {"classifier": "classifier"},
    "mlm": {"cls.predictions.transform.dense": "transform",
            "cls.predictions.transform.LayerNorm": "transform_ln"},
}
# The prefix of each head's tensors in a Hugging Face checkpoint, and what the head is.
_HF_HEAD_PREFIXES = {"classification": "classifier.", "mlm": "cls.predictions.", "nsp": "cls.seq_relationship."}
_HF_HEAD_KINDS = {"classification": "the classifier", "mlm": "the masked-LM head",
                  "nsp": "the next-sentence-prediction head"}
_HF_TASKS = {"encoder": Bert, "classification": BertForClassification, "mlm": BertForMaskedLM}
# BERT heads kiln has no class for; their encoder still loads with task="encoder".
_HF_OTHER_HEADS = {
    "BertForTokenClassification": "a classifier on every token",
    "BertForQuestionAnswering": "span start/end logits (qa_outputs)",
    "BertForMultipleChoice": "a multiple-choice scorer",
    "BertForNextSentencePrediction": "only a next-sentence-prediction head",
}


def load_hf_bert(folder, task: str = "auto") -> Bert:
    """Load a Hugging Face BERT checkpoint from a local folder into kiln's BERT, in eval mode.

    Reads ``config.json`` and ``model.safetensors`` (or a sharded ``model.safetensors.index.json``);
    never unpickles (a folder with only ``pytorch_model.bin`` is refused with the command that
    converts it). Given the same inputs, the result's outputs equal transformers' within float
    rounding: ``logits`` for a classifier or masked LM, ``last_hidden_state`` for an encoder.

    Args:
        folder: a directory written by ``save_pretrained``.
        task: (``"auto"``) which kiln model to build:
            - ``"classification"``: ``BertForClassification`` from ``BertForSequenceClassification``
              (``num_classes`` = the classifier's rows).
            - ``"mlm"``: ``BertForMaskedLM`` from ``BertForMaskedLM`` or ``BertForPreTraining`` (whose
              next-sentence head is left out, with a warning).
            - ``"encoder"``: ``Bert`` (inputs -> hidden states (B, T, hidden)) from any BERT
              checkpoint; its heads are left out, with a warning.
            - ``"auto"``: ``"classification"`` if the checkpoint has a ``classifier``, else ``"mlm"``
              if it has ``cls.predictions``, else ``"encoder"`` (e.g. ``BertModel``).

    A checkpoint without a pooler (``BertModel(add_pooling_layer=False)``, ``BertForMaskedLM``)
    keeps kiln's freshly initialised pooler, as transformers does. Fine-tune a classifier from a
    pretrained encoder with ``BertForClassification.from_pretrained_encoder(model, num_classes)``.
    ``dropout`` is the checkpoint's ``hidden_dropout_prob`` (used by ``fit`` only).

    Refused, with an error naming the field: ``hidden_act`` other than "gelu" (kiln's BERT uses
    the exact GELU), ``position_embedding_type`` other than "absolute", ``is_decoder`` /
    ``add_cross_attention``, and heads kiln has no class for (token classification, question
    answering, multiple choice) unless ``task="encoder"``.

    Example::

        model = load_hf_bert("checkpoints/bert-sst2")   # a BertForSequenceClassification folder
        logits = model({"input_ids": ids, "attention_mask": mask})   # (B, num_labels)

    Raises:
        KilnValueError: missing files, another ``model_type``, a config kiln's BERT cannot
            express, or tensors that are missing, unexpected or misshapen (each named).
    """
    from kiln.zoo.hf_checkpoint import ConfigFields, fit_state, read_config, read_weights, warn_ignored

    loader = "load_hf_bert"
    if task not in ("auto", *_HF_TASKS):
        raise KilnValueError(f"`task` must be one of {['auto', *_HF_TASKS]}. Received: task={task!r}")
    hf = read_config(folder, "bert", loader)
    fields = ConfigFields(hf, loader, folder, "BERT")
    hidden = fields.positive_int("hidden_size", 768)
    heads = fields.positive_int("num_attention_heads", 12)
    if hidden % heads:
        fields.problem(f"`hidden_size` must be divisible by `num_attention_heads`. Received: "
                       f"hidden_size={hidden}, num_attention_heads={heads}")
    config_fields = dict(
        vocab_size=fields.positive_int("vocab_size", 30522), hidden=hidden,
        layers=fields.positive_int("num_hidden_layers", 12), heads=heads,
        intermediate=fields.positive_int("intermediate_size", 3072),
        max_length=fields.positive_int("max_position_embeddings", 512),
        type_vocab_size=fields.positive_int("type_vocab_size", 2),
        dropout=fields.fraction("hidden_dropout_prob", 0.1),
        layer_norm_eps=fields.positive_float("layer_norm_eps", 1e-12))
    fields.supported("hidden_act", "gelu", ["gelu"], "kiln's BERT uses the exact (erf) GELU of the BERT paper")
    fields.supported("position_embedding_type", "absolute", ["absolute"],
                     "kiln's BERT has a learned absolute position table only")
    fields.supported("is_decoder", False, [False], "kiln's BERT is a bidirectional encoder, not a causal decoder")
    fields.supported("add_cross_attention", False, [False], "kiln's BERT has no cross-attention")
    architecture = (hf.get("architectures") or [None])[0]
    if architecture in _HF_OTHER_HEADS and task != "encoder":
        fields.problem(f"`architectures`=[{architecture!r}]: kiln has no head for {_HF_OTHER_HEADS[architecture]}. "
                       f"Supported heads: BertForSequenceClassification, BertForMaskedLM, BertForPreTraining; "
                       f"load the encoder alone with task='encoder'")
    fields.raise_problems()

    weights = _hf_bert_tensors(read_weights(folder, loader, hf))
    present = {head for head, prefix in _HF_HEAD_PREFIXES.items() if any(k.startswith(prefix) for k in weights)}
    if task == "auto":
        task = "classification" if "classification" in present else "mlm" if "mlm" in present else "encoder"
    elif task in ("classification", "mlm") and task not in present:
        kind = architecture or "this checkpoint"
        hint = ("build a classifier on the pretrained encoder with `BertForClassification.from_pretrained_encoder("
                f"load_hf_bert({str(folder)!r}, task='encoder'), num_classes=...)`"
                if task == "classification" else "load it with task='encoder' or task='auto'")
        raise KilnValueError(f"load_hf_bert(task={task!r}) needs the checkpoint's "
                             f"`{_HF_HEAD_PREFIXES[task]}*` tensors; {kind} in {str(folder)!r} has none. To use it, "
                             f"{hint}.")
    if task == "mlm":
        _check_tied_decoder(weights, folder)
    num_classes = 2
    if task == "classification":
        num_classes = weights["classifier.weight"].shape[0]
        labels = hf.get("id2label")
        if isinstance(labels, dict) and len(labels) != num_classes:
            raise KilnValueError(f"load_hf_bert cannot load {str(folder)!r}: config.json's `id2label` has "
                                 f"{len(labels)} labels but the classifier has {num_classes} outputs.")
    config = BertConfig(**config_fields, num_classes=num_classes)
    model = _HF_TASKS[task](config)

    left_out = sorted(present - {task})
    ignored = [k for k in weights if any(k.startswith(_HF_HEAD_PREFIXES[h]) for h in left_out)]
    warn_ignored(loader, ignored, f"kiln's {type(model).__name__} (task={task!r}) has no place for "
                                  f"{' or '.join(_HF_HEAD_KINDS[h] for h in left_out)}.")
    weights = {k: v for k, v in weights.items() if k not in ignored}
    pooler = ("pooler.weight", "pooler.bias")
    unfilled = fit_state(model, _hf_bert_plan(model, task), weights, loader, folder, "BERT",
                         optional=pooler if task != "classification" else ())
    if unfilled and task == "encoder":
        warnings.warn(f"load_hf_bert: {str(folder)!r} has no pooler, so the model's pooler keeps its fresh "
                      f"initialisation: `model.encode(...)[1]` is not pretrained. The hidden states are.",
                      stacklevel=2)
    return model.eval()


def _hf_bert_tensors(weights: dict) -> dict:
    """Hugging Face names without the "bert." prefix, TF-era gamma/beta renamed, buffers dropped."""
    out = {}
    for key, value in weights.items():
        key = key.removeprefix("bert.")
        if key.endswith(("embeddings.position_ids", "embeddings.token_type_ids")):
            continue  # buffers (arange / zeros) that kiln builds on the fly
        if key.endswith("LayerNorm.gamma") or key.endswith("LayerNorm.beta"):
            key = key.removesuffix(".gamma").removesuffix(".beta") + (".weight" if key.endswith("gamma") else ".bias")
        out[key] = value
    return out


def _check_tied_decoder(weights: dict, folder) -> None:
    """Drop the MLM decoder's copy of the word embeddings (kiln ties them), refusing an untied one."""
    decoder = weights.pop("cls.predictions.decoder.weight", None)
    if decoder is not None and not torch.equal(decoder, weights.get("embeddings.word_embeddings.weight", decoder)):
        raise KilnValueError(f"load_hf_bert cannot load {str(folder)!r}: its MLM decoder "
                             f"`cls.predictions.decoder.weight` differs from the word embeddings, and kiln's "
                             f"BertForMaskedLM ties the two (as BERT does). Load it with task='encoder'.")
    bias = weights.pop("cls.predictions.decoder.bias", None)  # older files hold the bias twice, tied
    if bias is not None:
        weights.setdefault("cls.predictions.bias", bias)


def _hf_bert_plan(model: Bert, task: str) -> dict:
    """kiln name -> (Hugging Face names, combine) for ``fit_state``, for every tensor of ``model``."""
    modules = {}  # kiln module -> Hugging Face module
    for hf_module, kiln_module in {**_HF_ENCODER_NAMES, **_HF_HEAD_NAMES.get(task, {})}.items():
        for i in range(model.config.layers) if "{i}" in hf_module else [None]:
            modules[kiln_module.format(i=i)] = hf_module.format(i=i)
    plan = {}
    for name in model.state_dict():
        module, _, param = name.rpartition(".")
        if module in modules:
            plan[name] = ((f"{modules[module]}.{param}",), None)
    if task == "mlm":
        plan["decoder_bias"] = (("cls.predictions.bias",), None)
    return plan
