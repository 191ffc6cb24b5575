"""Vision Transformer (Dosovitskiy et al., 2020, "An Image is Worth 16x16 Words").

Images are cut into patch_size x patch_size patches, each linearly embedded (a strided conv),
a learned class token is prepended and learned position embeddings added, then pre-norm
transformer blocks (attention through ``F.scaled_dot_product_attention``) and a linear head
on the class token (or on the mean of the patch tokens, with ``pooling="mean"``).

Inputs are channels_last like Keras, (B, H, W, C). ``load_hf_vit(folder)`` reads a Hugging Face
``ViTForImageClassification`` checkpoint (``config.json`` + ``model.safetensors``) into this
model. Hugging Face takes ``pixel_values`` channels_first (B, C, H, W): give kiln
``pixel_values.permute(0, 2, 3, 1)`` (NumPy: ``.transpose(0, 2, 3, 1)``) and the logits agree.

    model = kiln.zoo.vit_tiny(num_classes=10, input_shape=(32, 32, 3), patch_size=4)
    model = kiln.zoo.load_hf_vit("path/to/vit-checkpoint")   # hypothetical local folder
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import kiln
from kiln.errors import KilnValueError

__all__ = ["ViTConfig", "ViT", "vit", "vit_tiny", "load_hf_vit"]


@dataclass
class ViTConfig:
    num_classes: int = 10
    input_shape: tuple = (32, 32, 3)  # (H, W, C), channels_last; H and W divisible by patch_size
    patch_size: int = 4               # 4 for 32x32 images gives 64 tokens; the paper uses 16 at 224
    depth: int = 6                    # transformer blocks
    heads: int = 4                    # attention heads; width must divide by it
    width: int = 128                  # token embedding size (the paper's "hidden size D")
    mlp_ratio: float = 4.0            # MLP hidden = width * mlp_ratio, as the paper
    pooling: str = "cls"              # "cls": classify the class token; "mean": average patch tokens
    dropout: float = 0.0              # off: ViTs on small data are regularised by augmentation instead
    layer_norm_eps: float = 1e-6      # 1e-6 as timm; Hugging Face checkpoints use 1e-12
    qkv_bias: bool = True
    activation: str = "gelu"          # "gelu" (exact, the paper) or "gelu_tanh" (tanh approximation)

    def __post_init__(self):
        problems = []
        if not isinstance(self.num_classes, int) or self.num_classes <= 0:
            problems.append(f"`num_classes` must be a positive integer. Received: num_classes={self.num_classes!r}")
        self.input_shape = tuple(self.input_shape)
        if len(self.input_shape) != 3 or any(not isinstance(d, int) or d <= 0 for d in self.input_shape):
            problems.append(f"`input_shape` must be (H, W, C) with positive ints. Received: input_shape={self.input_shape!r}")
        elif not isinstance(self.patch_size, int) or self.patch_size <= 0 or any(
                d % self.patch_size for d in self.input_shape[:2]):
            problems.append(f"`patch_size` must be a positive int dividing H and W. "
                            f"Received: patch_size={self.patch_size!r}, input_shape={self.input_shape!r}")
        for field in ("depth", "heads", "width"):
            value = getattr(self, field)
            if not isinstance(value, int) or value <= 0:
                problems.append(f"`{field}` must be a positive integer. Received: {field}={value!r}")
        if isinstance(self.width, int) and isinstance(self.heads, int) and self.heads > 0 and self.width % self.heads:
            problems.append(f"`width` must divide by `heads`. Received: width={self.width}, heads={self.heads}")
        if not self.mlp_ratio > 0:
            problems.append(f"`mlp_ratio` must be positive. Received: mlp_ratio={self.mlp_ratio!r}")
        if self.pooling not in ("cls", "mean"):
            problems.append(f"`pooling` must be 'cls' or 'mean'. Received: pooling={self.pooling!r}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"`dropout` must be in [0, 1). Received: dropout={self.dropout!r}")
        if self.activation not in ("gelu", "gelu_tanh"):
            problems.append(f"`activation` must be 'gelu' or 'gelu_tanh'. Received: activation={self.activation!r}")
        if problems:
            raise KilnValueError("Invalid ViT config:\n  " + "\n  ".join(problems))

    @property
    def num_patches(self) -> int:
        return (self.input_shape[0] // self.patch_size) * (self.input_shape[1] // self.patch_size)


class Attention(nn.Module):
    """Multi-head self-attention: one fused q/k/v projection, SDPA, an output projection."""

    def __init__(self, c: ViTConfig):
        super().__init__()
        self.heads = c.heads
        self.qkv = nn.Linear(c.width, 3 * c.width, bias=c.qkv_bias)
        self.proj = nn.Linear(c.width, c.width)
        self.dropout = c.dropout

    def forward(self, x):                                   # (B, T, D)
        B, T, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=2)               # 3 x (B, T, D)
        q, k, v = (t.view(B, T, self.heads, D // self.heads).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, D)              # (B, T, D)
        return self.proj(y)


class MLP(nn.Module):
    def __init__(self, c: ViTConfig):
        super().__init__()
        hidden = int(round(c.width * c.mlp_ratio))
        self.fc1 = nn.Linear(c.width, hidden)
        self.act = nn.GELU(approximate="tanh" if c.activation == "gelu_tanh" else "none")
        self.fc2 = nn.Linear(hidden, c.width)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x):                                   # (B, T, D)
        return self.drop(self.fc2(self.act(self.fc1(x))))   # (B, T, D); (B, T, width*mlp_ratio) inside


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, c: ViTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(c.width, eps=c.layer_norm_eps)
        self.attn = Attention(c)
        self.ln2 = nn.LayerNorm(c.width, eps=c.layer_norm_eps)
        self.mlp = MLP(c)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x):                                   # (B, T, D)
        x = x + self.drop(self.attn(self.ln1(x)))
        return x + self.mlp(self.ln2(x))


@kiln.saving.register_serializable(package="kiln.zoo")
class ViT(kiln.Model):
    """Vision Transformer: (B, H, W, C) channels_last images -> (B, num_classes) logits.

    Args: the fields of ``ViTConfig``; also ``name``/``trainable`` as any kiln Model.
    Accepts a tensor or a one-entry dict ``{"x": tensor}``.
    """

    def __init__(self, num_classes=10, input_shape=(32, 32, 3), patch_size=4, depth=6, heads=4, width=128,
                 mlp_ratio=4.0, pooling="cls", dropout=0.0, layer_norm_eps=1e-6, qkv_bias=True,
                 activation="gelu", **kwargs):
        super().__init__(**kwargs)
        self.config = ViTConfig(num_classes, tuple(input_shape), patch_size, depth, heads, width, float(mlp_ratio),
                                pooling, dropout, layer_norm_eps, qkv_bias, activation)
        c = self.config
        self.patch_embed = nn.Conv2d(c.input_shape[-1], c.width, c.patch_size, stride=c.patch_size)
        tokens = c.num_patches + (1 if c.pooling == "cls" else 0)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.width)) if c.pooling == "cls" else None
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, c.width))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.depth))
        self.ln_f = nn.LayerNorm(c.width, eps=c.layer_norm_eps)
        self.head = nn.Linear(c.width, c.num_classes)

    def call(self, inputs):
        x = _single_input(inputs)                            # (B, H, W, C) channels_last
        x = self.patch_embed(x.permute(0, 3, 1, 2))          # (B, D, H/P, W/P)
        x = x.flatten(2).transpose(1, 2)                     # (B, N, D), N = HW/P^2
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)  # (B, 1+N, D)
        x = self.drop(x + self.pos_embed)
        for block in self.blocks:
            x = block(x)
        x = self.ln_f(x)                                     # (B, T, D)
        x = x[:, 0] if self.cls_token is not None else x.mean(dim=1)  # (B, D)
        return self.head(x)                                  # (B, num_classes)

    def get_config(self) -> dict:
        config = asdict(self.config)
        config["input_shape"] = list(config["input_shape"])
        return {**super().get_config(), **config}


def _single_input(inputs) -> torch.Tensor:
    """The tensor itself, or the only value of a one-entry dict (as ONNX export and run configs pass)."""
    if isinstance(inputs, dict):
        if len(inputs) != 1:
            raise KilnValueError(f"This model takes one input; received a dict with keys {sorted(inputs)}.")
        inputs = next(iter(inputs.values()))
    return inputs


def vit(num_classes: int = 10, input_shape=(32, 32, 3), patch_size: int = 4, depth: int = 6, heads: int = 4,
        width: int = 128, mlp_ratio: float = 4.0, pooling: str = "cls", dropout: float = 0.0) -> ViT:
    """A ViT of any size; the defaults (6 blocks, 4 heads, width 128, 4x4 patches) suit 32x32 images."""
    return ViT(num_classes=num_classes, input_shape=input_shape, patch_size=patch_size, depth=depth, heads=heads,
               width=width, mlp_ratio=mlp_ratio, pooling=pooling, dropout=dropout)


def vit_tiny(num_classes: int = 10, input_shape=(32, 32, 3), patch_size: int = 4, pooling: str = "cls") -> ViT:
    """ViT-Tiny (DeiT-Ti's numbers: 12 blocks, 3 heads, width 192, MLP 768), ~5.5M parameters."""
    return ViT(num_classes=num_classes, input_shape=input_shape, patch_size=patch_size, depth=12, heads=3,
               width=192, mlp_ratio=4.0, pooling=pooling)


# ---------------------------------------------------------------------- Hugging Face checkpoints
_HF_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}


def load_hf_vit(folder) -> ViT:
    """Load a Hugging Face ``ViTForImageClassification`` checkpoint from a local folder.

    Reads ``config.json`` and ``model.safetensors`` (safetensors only: no pickle is ever
    loaded). The result takes channels_last images: ``model(pixel_values.permute(0, 2, 3, 1))``
    equals Hugging Face's ``model(pixel_values).logits``.

    Args:
        folder: a directory written by ``save_pretrained`` (both layer-naming schemes of
            transformers 4.x and 5.x are understood).

    Raises:
        KilnValueError: missing files, a config kiln's ViT cannot express, or missing weights.
    """
    folder = Path(folder)
    config_path, weights_path = folder / "config.json", folder / "model.safetensors"
    missing = [p.name for p in (config_path, weights_path) if not p.is_file()]
    if missing:
        raise KilnValueError(f"load_hf_vit needs config.json and model.safetensors in {str(folder)!r}; "
                             f"missing: {missing}. Save the model with save_pretrained(folder, safe_serialization=True).")
    hf = json.loads(config_path.read_text())
    if hf.get("model_type", "vit") != "vit":
        raise KilnValueError(f"load_hf_vit reads ViT checkpoints; {str(folder)!r} holds model_type={hf['model_type']!r}.")
    act = hf.get("hidden_act", "gelu")
    if act not in _HF_ACTIVATIONS:
        raise KilnValueError(f"kiln's ViT supports hidden_act in {sorted(_HF_ACTIVATIONS)}; the checkpoint has {act!r}.")
    size, patch = hf.get("image_size", 224), hf.get("patch_size", 16)
    size = tuple(size) if isinstance(size, (list, tuple)) else (size, size)
    patch = patch[0] if isinstance(patch, (list, tuple)) else patch

    from safetensors.torch import load_file
    weights = {k: v.float() for k, v in load_file(str(weights_path)).items()}
    if "classifier.weight" not in weights:
        raise KilnValueError(f"{str(folder)!r} has no classifier weights: load_hf_vit needs a "
                             f"ViTForImageClassification checkpoint, not a bare ViTModel.")
    width = hf.get("hidden_size", 768)
    model = ViT(num_classes=weights["classifier.weight"].shape[0], input_shape=(*size, hf.get("num_channels", 3)),
                patch_size=patch, depth=hf.get("num_hidden_layers", 12), heads=hf.get("num_attention_heads", 12),
                width=width, mlp_ratio=hf.get("intermediate_size", 4 * width) / width, pooling="cls", dropout=0.0,
                layer_norm_eps=hf.get("layer_norm_eps", 1e-12), qkv_bias=hf.get("qkv_bias", True),
                activation=_HF_ACTIVATIONS[act])
    model.load_state_dict(_hf_to_kiln(weights, model.config.depth, hf.get("qkv_bias", True)), strict=True)
    return model.eval()


def _hf_to_kiln(w: dict, depth: int, qkv_bias: bool) -> dict:
    """Rename a Hugging Face ViT state dict to kiln's; q, k, v are concatenated into one qkv."""
    def take(*names):  # the first name present: transformers 4.x names, then 5.x names
        for name in names:
            if name in w:
                return w[name]
        raise KilnValueError(f"The checkpoint lacks the weight {names[0]!r} (nor {list(names[1:])}).")

    e = "vit.embeddings."
    out = {
        "cls_token": take(e + "cls_token"),
        "pos_embed": take(e + "position_embeddings"),
        "patch_embed.weight": take(e + "patch_embeddings.projection.weight"),
        "patch_embed.bias": take(e + "patch_embeddings.projection.bias"),
        "ln_f.weight": take("vit.layernorm.weight"), "ln_f.bias": take("vit.layernorm.bias"),
        "head.weight": take("classifier.weight"), "head.bias": take("classifier.bias"),
    }
    for i in range(depth):
        old, new, k = f"vit.encoder.layer.{i}.", f"vit.layers.{i}.", f"blocks.{i}."
        for p in ("weight", "bias"):
            out[k + f"ln1.{p}"] = take(old + f"layernorm_before.{p}", new + f"layernorm_before.{p}")
            out[k + f"ln2.{p}"] = take(old + f"layernorm_after.{p}", new + f"layernorm_after.{p}")
            out[k + f"attn.proj.{p}"] = take(old + f"attention.output.dense.{p}", new + f"attention.o_proj.{p}")
            out[k + f"mlp.fc1.{p}"] = take(old + f"intermediate.dense.{p}", new + f"mlp.fc1.{p}")
            out[k + f"mlp.fc2.{p}"] = take(old + f"output.dense.{p}", new + f"mlp.fc2.{p}")
            if p == "bias" and not qkv_bias:
                continue
            out[k + f"attn.qkv.{p}"] = torch.cat([
                take(old + f"attention.attention.{hf}.{p}", new + f"attention.{hf[0]}_proj.{p}")
                for hf in ("query", "key", "value")], dim=0)  # (3D, D) / (3D,): q rows, then k, then v
    return out
