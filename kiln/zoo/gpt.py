"""A GPT-style decoder in one file, after nanoGPT's ``model.py``.

Token + learned position embeddings, pre-LayerNorm blocks of causal self-attention and a GELU
MLP, a final LayerNorm, and an output layer that reuses the token embedding (weight tying).
Module names follow GPT-2 (``transformer.h.0.attn.c_attn`` ...), so a Hugging Face GPT-2
checkpoint loads with a transpose and nothing else (``load_hf_gpt2``).

    model = kiln.zoo.gpt(vocab_size=65, block_size=64)
    model.compile(optimizer="adam", loss=kiln.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y)                       # x, y: (B, T) token ids, y = x shifted by one
    model.generate(x[:1, :8], max_new_tokens=20, temperature=0.8, top_k=10, seed=0)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

import kiln
from kiln.errors import KilnValueError
from kiln.zoo.common import single_input
from kiln.zoo.tokenizer_assets import SavesTokenizer

__all__ = ["GPTConfig", "GPT", "gpt", "gpt_tiny", "load_hf_gpt2"]


@dataclass
class GPTConfig:
    vocab_size: int = 50257
    block_size: int = 128       # longest context; the position table has this many rows
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128           # must divide by n_head: each head gets n_embd // n_head dims
    dropout: float = 0.0        # 0.0 for small data and for inference; 0.1 when overfitting
    bias: bool = True           # GPT-2 has biases in Linear and LayerNorm
    layer_norm_epsilon: float = 1e-5   # GPT-2's value
    gelu_approximate: str = "tanh"     # GPT-2's "gelu_new" is the tanh approximation

    def __post_init__(self):
        problems = []
        for field in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, field)
            if not isinstance(value, int) or value <= 0:
                problems.append(f"`{field}` must be a positive integer. Received: {field}={value!r}")
        if not problems and self.n_embd % self.n_head:
            problems.append(f"`n_embd` must be divisible by `n_head`. Received: n_embd={self.n_embd}, "
                            f"n_head={self.n_head}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"`dropout` must be in [0, 1). Received: dropout={self.dropout!r}")
        if self.gelu_approximate not in ("tanh", "none"):
            problems.append(f"`gelu_approximate` must be 'tanh' or 'none'. "
                            f"Received: gelu_approximate={self.gelu_approximate!r}")
        if problems:
            raise KilnValueError("Invalid GPTConfig:\n  " + "\n  ".join(problems))


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v at once
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head, self.n_embd, self.dropout = config.n_head, config.n_embd, config.dropout

    def forward(self, x, past=None):
        """x (B, T, C); past: None or (k, v) each (B, nh, P, hs). Returns y and the new (k, v)."""
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)  # (B, nh, P+T, hs)
            v = torch.cat([past[1], v], dim=2)
        dropout = self.dropout if self.training else 0.0
        if past is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        else:
            # New queries sit at positions P..P+T-1: each sees every cached key and the new keys
            # up to itself. (is_causal would align the mask top-left, which is wrong here.)
            P = k.size(2) - T
            mask = torch.ones(T, P + T, dtype=torch.bool, device=x.device).tril(diagonal=P)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): heads side by side again
        return self.resid_dropout(self.c_proj(y)), (k, v)


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate=config.gelu_approximate)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, past=None):
        y, present = self.attn(self.ln_1(x), past)  # pre-LN: normalise, then add back
        x = x + y
        x = x + self.mlp(self.ln_2(x))
        return x, present


class GPT(SavesTokenizer, kiln.Model):
    """A GPT decoder: token ids (B, T) -> next-token logits (B, T, vocab_size).

    Args:
        config: a ``GPTConfig`` (or a dict of its fields); default ``GPTConfig()``.
        name: the model's name (default "gpt").
    """

    def __init__(self, config: GPTConfig | dict | None = None, **kwargs):
        kwargs.setdefault("name", "gpt")
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = GPTConfig(**config)
        self.config = config = config or GPTConfig()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias),
        ))
        # The output layer is the token embedding read backwards (weight tying): logits are
        # F.linear(x, wte.weight), so there is one matrix to save and to load.
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # GPT-2: scale residual projections by depth
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def call(self, idx):
        logits, _ = self._forward(single_input(idx))
        return logits

    def _forward(self, idx, past=None):
        """idx (B, T) -> logits (B, T, V) and the per-layer (k, v) caches."""
        if idx.dtype not in (torch.int64, torch.int32):
            idx = idx.long()
        B, T = idx.size()
        start = 0 if past is None else past[0][0].size(2)
        if start + T > self.config.block_size:
            raise KilnValueError(f"Cannot run a sequence of length {start + T}: this GPT's block_size is "
                                 f"{self.config.block_size}. Crop the input to its last "
                                 f"{self.config.block_size} tokens.")
        pos = torch.arange(start, start + T, dtype=torch.long, device=idx.device)  # (T,)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # (B, T, C)
        presents = []
        for i, block in enumerate(self.transformer.h):
            x, present = block(x, None if past is None else past[i])
            presents.append(present)
        x = self.transformer.ln_f(x)
        return F.linear(x, self.transformer.wte.weight), presents  # (B, T, V)

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, stop_tokens=None,
                 seed=None, use_cache=True):
        """Continue each row of ``idx`` (B, T) by up to ``max_new_tokens`` tokens -> (B, T + n).

        Args:
            temperature: (1.0) divides the logits; 0 picks the most likely token (greedy).
            top_k: (None) sample only among the k most likely tokens.
            top_p: (None) sample only among the smallest set whose probability reaches p.
            stop_tokens: (None) token ids that end a row; a finished row is padded with the first
                stop token, and generation ends early once every row has finished.
            seed: (None) seeds a local ``torch.Generator``: the same seed gives the same tokens,
                and the global random state is left alone.
            use_cache: (True) keep keys and values between steps; gives the same tokens as
                recomputing the whole context, faster.
        """
        if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise KilnValueError(f"`max_new_tokens` must be a non-negative integer. "
                                 f"Received: max_new_tokens={max_new_tokens!r}")
        if temperature < 0:
            raise KilnValueError(f"`temperature` must be >= 0. Received: temperature={temperature!r}")
        if top_k is not None and (not isinstance(top_k, int) or top_k <= 0):
            raise KilnValueError(f"`top_k` must be a positive integer or None. Received: top_k={top_k!r}")
        if top_p is not None and not 0.0 < top_p <= 1.0:
            raise KilnValueError(f"`top_p` must be in (0, 1] or None. Received: top_p={top_p!r}")
        was_training = self.training
        self.eval()
        idx = torch.as_tensor(idx, device=self.device).long()
        if idx.dim() == 1:
            idx = idx.unsqueeze(0)
        generator = None
        if seed is not None:
            generator = torch.Generator(device=idx.device)
            generator.manual_seed(int(seed))
        stop = None if not stop_tokens else torch.tensor(list(stop_tokens), device=idx.device)
        finished = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
        block_size = self.config.block_size
        past = None
        for _ in range(max_new_tokens):
            if use_cache and idx.size(1) <= block_size:
                step_input = idx if past is None else idx[:, -1:]
                logits, past = self._forward(step_input, past)
            else:
                # Past the block size the window slides, and every position moves: recompute.
                logits, _ = self._forward(idx[:, -block_size:])
                past = None
            logits = logits[:, -1, :].float()  # (B, V)
            next_token = _pick(logits, temperature, top_k, top_p, generator)  # (B, 1)
            if stop is not None:
                next_token = torch.where(finished[:, None], stop[:1].expand_as(next_token), next_token)
                finished |= torch.isin(next_token[:, 0], stop)
            idx = torch.cat([idx, next_token], dim=1)
            if stop is not None and bool(finished.all()):
                break
        self.train(was_training)
        return idx

    def get_config(self) -> dict:
        return {"config": asdict(self.config), "name": self.name}

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        return cls(GPTConfig(**config.pop("config")), **config)


def _pick(logits, temperature, top_k, top_p, generator):
    """logits (B, V) -> chosen token ids (B, 1)."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        sorted_logits, order = torch.sort(logits, descending=True)
        sorted_probs = sorted_logits.softmax(dim=-1)
        # Drop a token when the ones before it already reach top_p; the first always stays.
        drop_sorted = (sorted_probs.cumsum(dim=-1) - sorted_probs) >= top_p
        drop = drop_sorted.scatter(1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)


def gpt(vocab_size, block_size=128, n_layer=4, n_head=4, n_embd=128, dropout=0.0) -> GPT:
    """A GPT decoder: (B, T) token ids -> (B, T, vocab_size) logits.

    Example: ``kiln.zoo.gpt(vocab_size=65, block_size=64, n_layer=2)``
    """
    return GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=n_head,
                         n_embd=n_embd, dropout=dropout))


def gpt_tiny(vocab_size, block_size=64) -> GPT:
    """A 2-layer, 64-wide GPT for tests and character-level toys (~0.1 M parameters + embeddings)."""
    return gpt(vocab_size, block_size=block_size, n_layer=2, n_head=2, n_embd=64)


# ---------------------------------------------------------------------- Hugging Face checkpoints
# GPT-2's activation_function -> nn.GELU's `approximate`; other activations are refused.
_HF_ACTIVATIONS = {"gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu": "none"}
# Per block, Hugging Face module (after "h.{i}.") = kiln module (after "transformer.h.{i}.").
_HF_BLOCK_MODULES = ("ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj")
_HF_CONV1D = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")  # weights stored (in, out)
# GPT-2 heads kiln's GPT (a language model) has no place for.
_HF_OTHER_HEADS = {
    "GPT2ForSequenceClassification": "a sequence classifier (`score`)",
    "GPT2ForTokenClassification": "a classifier on every token",
    "GPT2ForQuestionAnswering": "span start/end logits (qa_outputs)",
}


def load_hf_gpt2(folder) -> GPT:
    """Load a Hugging Face GPT-2 checkpoint from a local folder into kiln's GPT, in eval mode.

    Reads ``config.json`` and ``model.safetensors`` (or a sharded ``model.safetensors.index.json``)
    from a ``GPT2LMHeadModel`` or a bare ``GPT2Model`` folder; never unpickles. The output layer
    is the token embedding (GPT-2's tied ``lm_head``, usually absent from the file), so for a
    ``GPT2Model`` the logits are ``last_hidden_state @ wte.T``. GPT-2 stores its Linear layers
    as ``Conv1D`` with weights (in, out); they are transposed to ``nn.Linear``'s (out, in).

    Logits equal transformers' within float rounding, and ``generate(ids, n, temperature=0)``
    gives the tokens of transformers' ``generate(ids, max_new_tokens=n, do_sample=False)`` for
    unpadded prompts (kiln's ``generate`` takes no attention mask, and ignores
    ``generation_config.json``: pass ``stop_tokens`` yourself). Sampling with ``seed=`` is
    reproducible in kiln but cannot reproduce transformers' samples: the random streams differ.

    Supported exactly: ``activation_function`` "gelu_new" (default), "gelu_pytorch_tanh" and
    "gelu"; ``scale_attn_weights=False`` and ``scale_attn_by_inverse_layer_idx=True`` (the
    attention scale is folded into the query projection, so the stored query weights differ from
    the file's by that factor); ``reorder_and_upcast_attn`` (a float16 stability measure; the
    same numbers in float32); any ``n_positions`` (the context length, ``block_size``; the legacy
    ``n_ctx`` is ignored, as transformers does) and ``layer_norm_epsilon``. ``dropout`` is the
    checkpoint's ``resid_pdrop`` (used by ``fit`` only).

    Refused, with an error naming the field: other activations, ``n_inner`` other than
    4 x ``n_embd``, ``add_cross_attention``, an untied ``lm_head``, and heads other than the LM
    head (sequence / token classification, question answering).

    Example::

        model = load_hf_gpt2("checkpoints/gpt2")
        model.generate(ids, max_new_tokens=20, temperature=0)   # greedy, as do_sample=False

    Raises:
        KilnValueError: missing files, another ``model_type``, a config kiln's GPT cannot
            express, or tensors that are missing, unexpected or misshapen (each named).
    """
    from kiln.zoo.hf_checkpoint import ConfigFields, fit_state, read_config, read_weights, transpose, warn_ignored

    loader = "load_hf_gpt2"
    hf = read_config(folder, "gpt2", loader)
    fields = ConfigFields(hf, loader, folder, "GPT")
    n_embd = fields.positive_int("n_embd", 768)
    n_head = fields.positive_int("n_head", 12)
    if n_embd % n_head:
        fields.problem(f"`n_embd` must be divisible by `n_head`. Received: n_embd={n_embd}, n_head={n_head}")
    config_fields = dict(vocab_size=fields.positive_int("vocab_size", 50257),
                         block_size=fields.positive_int("n_positions", 1024),
                         n_layer=fields.positive_int("n_layer", 12), n_head=n_head, n_embd=n_embd,
                         dropout=fields.fraction("resid_pdrop", 0.1),
                         layer_norm_epsilon=fields.positive_float("layer_norm_epsilon", 1e-5))
    activation = fields.supported("activation_function", "gelu_new", _HF_ACTIVATIONS,
                                  "kiln's GPT uses GELU, exact or with the tanh approximation")
    n_inner = hf.get("n_inner")
    if n_inner is not None and n_inner != 4 * n_embd:
        fields.problem(f"`n_inner`={n_inner!r} is not supported: kiln's GPT MLP is 4 x n_embd wide "
                       f"({4 * n_embd}). Supported: None or {4 * n_embd}")
    fields.supported("add_cross_attention", False, [False], "kiln's GPT has no cross-attention")
    scale_by_width = fields.supported("scale_attn_weights", True, [True, False], "it must be true or false")
    scale_by_layer = fields.supported("scale_attn_by_inverse_layer_idx", False, [True, False],
                                      "it must be true or false")
    fields.supported("reorder_and_upcast_attn", False, [True, False], "it must be true or false")
    architecture = (hf.get("architectures") or [None])[0]
    if architecture in _HF_OTHER_HEADS:
        fields.problem(f"`architectures`=[{architecture!r}]: kiln's GPT is a language model and has no head for "
                       f"{_HF_OTHER_HEADS[architecture]}. Supported: GPT2LMHeadModel, GPT2Model")
    fields.raise_problems()

    weights = {}
    for key, value in read_weights(folder, loader, hf).items():
        key = key.removeprefix("transformer.")
        if key.endswith((".attn.bias", ".attn.masked_bias")):
            continue  # old files hold the causal-mask buffers; kiln's attention is causal by construction
        weights[key] = value
    lm_head = weights.pop("lm_head.weight", None)
    if lm_head is not None and not torch.equal(lm_head, weights.get("wte.weight", lm_head)):
        raise KilnValueError(f"load_hf_gpt2 cannot load {str(folder)!r}: its `lm_head.weight` differs from "
                             f"`wte.weight` (tie_word_embeddings={hf.get('tie_word_embeddings')!r}), and kiln's GPT "
                             f"ties its output layer to the token embedding, as GPT-2 does.")
    extra_heads = [k for k in weights if k.startswith("multiple_choice_head.")]  # GPT2DoubleHeadsModel
    warn_ignored(loader, extra_heads, "kiln's GPT has no multiple-choice head; the language model loads.")
    weights = {k: v for k, v in weights.items() if k not in extra_heads}

    config = GPTConfig(**config_fields, gelu_approximate=_HF_ACTIVATIONS[activation])
    model = GPT(config)
    plan = {f"transformer.{name}.weight": ((f"{name}.weight",), None) for name in ("wte", "wpe")}
    for name in ("ln_f.weight", "ln_f.bias"):
        plan[f"transformer.{name}"] = ((name,), None)
    for i in range(config.n_layer):
        for module in _HF_BLOCK_MODULES:
            for param in ("weight", "bias"):
                hf_name = f"h.{i}.{module}.{param}"
                combine = transpose if module in _HF_CONV1D and param == "weight" else None
                plan[f"transformer.{hf_name}"] = ((hf_name,), combine)
    fit_state(model, plan, weights, loader, folder, "GPT-2")

    # kiln's attention scales scores by 1/sqrt(head size); GPT-2 may use 1 (scale_attn_weights=False)
    # and/or divide by (layer index + 1). Scaling the query by the ratio gives GPT-2's scores exactly.
    head_size = n_embd // n_head
    with torch.no_grad():
        for i, block in enumerate(model.transformer.h):
            ratio = (1.0 if scale_by_width else head_size ** 0.5) / ((i + 1) if scale_by_layer else 1)
            if ratio != 1.0:
                block.attn.c_attn.weight[:n_embd] *= ratio  # (3C, C): the query's rows come first
                block.attn.c_attn.bias[:n_embd] *= ratio
    return model.eval()
