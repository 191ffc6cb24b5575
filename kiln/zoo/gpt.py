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

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

import kiln
from kiln.errors import KilnValueError

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


@kiln.saving.register_serializable(package="kiln.zoo")
class GPT(kiln.Model):
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
        logits, _ = self._forward(_single_input(idx))
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


def _single_input(inputs) -> torch.Tensor:
    """The tensor itself, or the only value of a one-entry dict (as ONNX export and run configs pass)."""
    if isinstance(inputs, dict):
        if len(inputs) != 1:
            raise KilnValueError(f"This model takes one input; received a dict with keys {sorted(inputs)}.")
        inputs = next(iter(inputs.values()))
    return inputs


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
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        # Drop a token when the ones before it already reach top_p; the first always stays.
        drop_sorted = (cumulative - sorted_logits.softmax(dim=-1)) >= top_p
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


def load_hf_gpt2(folder) -> GPT:
    """Load a Hugging Face GPT-2 checkpoint (``config.json`` + ``model.safetensors``) from a local folder.

    Reads with safetensors only (no pickle). GPT-2 stores its Linear layers as ``Conv1D`` with
    weights shaped (in, out); they are transposed to ``nn.Linear``'s (out, in).
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    config_path, weights_path = folder / "config.json", folder / "model.safetensors"
    for path in (config_path, weights_path):
        if not path.is_file():
            raise KilnValueError(f"Cannot load a GPT-2 checkpoint from {str(folder)!r}: {path.name} is missing. "
                                 f"Expected a folder written by `save_pretrained` (safetensors weights).")
    hf = json.loads(config_path.read_text())
    activation = hf.get("activation_function", "gelu_new")
    config = GPTConfig(vocab_size=hf["vocab_size"], block_size=hf.get("n_positions", 1024),
                       n_layer=hf["n_layer"], n_head=hf["n_head"], n_embd=hf["n_embd"], dropout=0.0,
                       layer_norm_epsilon=hf.get("layer_norm_epsilon", 1e-5),
                       gelu_approximate="none" if activation == "gelu" else "tanh")
    model = GPT(config)
    state = {}
    for key, value in load_file(str(weights_path)).items():
        key = key.removeprefix("transformer.")
        if key.startswith("lm_head.") or key.endswith(".attn.bias") or key.endswith(".attn.masked_bias"):
            continue  # lm_head is tied to wte; attn.bias is GPT-2's causal-mask buffer
        if any(key.endswith(s) for s in ("c_attn.weight", "c_proj.weight", "c_fc.weight")):
            value = value.t()  # Conv1D (in, out) -> Linear (out, in)
        state["transformer." + key] = value
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise KilnValueError(f"The checkpoint in {str(folder)!r} does not fit GPT-2's layout. "
                             f"Missing: {missing}. Unexpected: {unexpected}.")
    return model.eval()
