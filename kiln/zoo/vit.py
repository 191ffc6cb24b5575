"""Vision Transformer (Dosovitskiy et al., 2020, "An Image is Worth 16x16 Words").

Images are cut into patch_size x patch_size patches, each linearly embedded (a strided conv),
a learned class token is prepended and learned position embeddings added, then pre-norm
transformer blocks (attention through ``F.scaled_dot_product_attention``) and a linear head
on the class token (or on the mean of the patch tokens, with ``pooling="mean"``).

Inputs are channels_last like Keras, (B, H, W, C). ``load_hf_vit(folder)`` reads a Hugging Face
``ViTForImageClassification`` or ``ViTModel`` checkpoint (``config.json`` + safetensors) into
this model. Hugging Face takes ``pixel_values`` channels_first (B, C, H, W): give kiln
``pixel_values.permute(0, 2, 3, 1)`` (NumPy: ``.transpose(0, 2, 3, 1)``) and the logits agree.

    model = kiln.zoo.vit_tiny(num_classes=10, input_shape=(32, 32, 3), patch_size=4)
    from kiln.zoo.vit import load_hf_vit
    model = load_hf_vit("path/to/vit-checkpoint")                 # hypothetical local folder
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

import kiln
from kiln.errors import KilnValueError
from kiln.zoo.common import build_for_first_batch, single_input

__all__ = ["ViTConfig", "ViT", "vit", "vit_tiny", "load_hf_vit"]


@dataclass
class ViTConfig:
    num_classes: int = 10
    input_shape: tuple | None = None  # (H, W, C), channels_last; H and W divisible by patch_size;
                                      # None: inferred at the first call (position embeddings then fixed)
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
        self.input_shape = None if self.input_shape is None else tuple(self.input_shape)
        if self.input_shape is None:
            if not isinstance(self.patch_size, int) or self.patch_size <= 0:
                problems.append(f"`patch_size` must be a positive int. Received: patch_size={self.patch_size!r}")
        elif len(self.input_shape) != 3 or any(not isinstance(d, int) or d <= 0 for d in self.input_shape):
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


class ViT(kiln.Model):
    """Vision Transformer: (B, H, W, C) channels_last images -> (B, num_classes) logits.

    Args: the fields of ``ViTConfig``; also ``name``/``trainable`` as any kiln Model.
    Accepts a tensor or a one-entry dict ``{"x": tensor}``.
    """

    def __init__(self, num_classes=10, input_shape=None, patch_size=4, depth=6, heads=4, width=128,
                 mlp_ratio=4.0, pooling="cls", dropout=0.0, layer_norm_eps=1e-6, qkv_bias=True,
                 activation="gelu", **kwargs):
        super().__init__(**kwargs)
        self.config = ViTConfig(num_classes, input_shape, patch_size, depth, heads, width, float(mlp_ratio),
                                pooling, dropout, layer_norm_eps, qkv_bias, activation)
        if self.config.input_shape is not None:
            self._build()

    def _build(self):
        """Create the layers for ``config.input_shape`` (at the first call when it was left out)."""
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
        x = single_input(inputs)                             # (B, H, W, C) channels_last
        if self.config.input_shape is None:
            build_for_first_batch(self, x)
        if torch.is_tensor(x) and x.dim() == 4 and tuple(x.shape[1:3]) != self.config.input_shape[:2]:
            raise KilnValueError(
                f"This ViT's position embeddings were made for {self.config.input_shape[0]}x"
                f"{self.config.input_shape[1]} images (input_shape={self.config.input_shape}). Received: a batch of "
                f"shape {tuple(x.shape)}; resize the images to that size or make a new model for this one.")
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
        if config["input_shape"] is not None:
            config["input_shape"] = list(config["input_shape"])
        return {**super().get_config(), **config}


def vit(num_classes: int = 10, input_shape=None, patch_size: int = 4, depth: int = 6, heads: int = 4,
        width: int = 128, mlp_ratio: float = 4.0, pooling: str = "cls", dropout: float = 0.0) -> ViT:
    """A ViT of any size; the defaults (6 blocks, 4 heads, width 128, 4x4 patches) suit 32x32 images."""
    return ViT(num_classes=num_classes, input_shape=input_shape, patch_size=patch_size, depth=depth, heads=heads,
               width=width, mlp_ratio=mlp_ratio, pooling=pooling, dropout=dropout)


def vit_tiny(num_classes: int = 10, input_shape=None, patch_size: int = 4, pooling: str = "cls") -> ViT:
    """ViT-Tiny (DeiT-Ti's numbers: 12 blocks, 3 heads, width 192, MLP 768), ~5.5M parameters."""
    return ViT(num_classes=num_classes, input_shape=input_shape, patch_size=patch_size, depth=12, heads=3,
               width=192, mlp_ratio=4.0, pooling=pooling)


# ---------------------------------------------------------------------- Hugging Face checkpoints
_HF_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}
# transformers 5 names a layer's parts differently in memory (vit.layers.0.attention.q_proj ...) and
# a file written from its state_dict has those names; save_pretrained writes the classic ones. Newer
# names are rewritten to the classic ones before the table below is used.
_QKV = {"q": "query", "k": "key", "v": "value"}
_HF_NEW_NAMES = [
    (re.compile(r"^layers\.(\d+)\."), r"encoder.layer.\1."),
    (re.compile(r"\.attention\.([qkv])_proj\."), lambda m: f".attention.attention.{_QKV[m.group(1)]}."),
    (re.compile(r"\.attention\.o_proj\."), ".attention.output.dense."),
    (re.compile(r"\.mlp\.fc1\."), ".intermediate.dense."),
    (re.compile(r"\.mlp\.fc2\."), ".output.dense."),
]
# Per block, kiln module (after "blocks.{i}.") -> Hugging Face module (after "encoder.layer.{i}.").
_HF_BLOCK_NAMES = {
    "ln1": "layernorm_before", "ln2": "layernorm_after", "attn.proj": "attention.output.dense",
    "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense",
}


def load_hf_vit(folder, num_classes: int | None = None) -> ViT:
    """Load a Hugging Face ViT checkpoint from a local folder into kiln's ViT, in eval mode.

    Reads ``config.json`` and ``model.safetensors`` (or a sharded ``model.safetensors.index.json``);
    never unpickles. kiln's ViT takes channels_last images: give it
    ``pixel_values.permute(0, 2, 3, 1)`` for transformers' (B, C, H, W) ``pixel_values``.

    What the model outputs, by checkpoint and ``num_classes``:
        - ``ViTForImageClassification``, ``num_classes=None``: its logits (B, num_labels), equal
          to transformers' within float rounding.
        - ``ViTModel``, ``num_classes=None``: the final [CLS] features (B, hidden_size), equal to
          transformers' ``last_hidden_state[:, 0]`` (kiln's head is set to the identity). These
          are what ``ViTForImageClassification`` classifies; the ``ViTModel`` pooler (dense +
          tanh) has no place in kiln's ViT and is left out, with a warning.
        - any checkpoint, ``num_classes=N``: the pretrained encoder with a new, randomly
          initialised head of N classes, to fine-tune (a checkpoint's classifier is left out).

    Supported: any ``image_size``, ``num_channels`` and square ``patch_size`` dividing the image,
    ``qkv_bias`` True or False, ``hidden_act`` in {"gelu", "gelu_new", "gelu_pytorch_tanh"}, and
    both layer-naming schemes of transformers 4.x and 5.x. Images must have exactly
    ``image_size`` (kiln's ViT does not interpolate position embeddings). ``dropout`` is the
    checkpoint's ``hidden_dropout_prob`` (used by ``fit`` only).

    Example::

        model = load_hf_vit("checkpoints/vit-base")          # a ViTForImageClassification folder
        logits = model(pixel_values.permute(0, 2, 3, 1))     # (B, num_labels)

    Raises:
        KilnValueError: missing files, another ``model_type``, a config kiln's ViT cannot
            express, or tensors that are missing, unexpected or misshapen (each named).
    """
    from kiln.zoo.hf_checkpoint import ConfigFields, concat, fit_state, read_config, read_weights, warn_ignored

    loader = "load_hf_vit"
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                    or num_classes <= 0):
        raise KilnValueError(f"`num_classes` must be None or a positive integer. Received: num_classes={num_classes!r}")
    hf = read_config(folder, "vit", loader)
    fields = ConfigFields(hf, loader, folder, "ViT")
    width = fields.positive_int("hidden_size", 768)
    heads = fields.positive_int("num_attention_heads", 12)
    intermediate = fields.positive_int("intermediate_size", 3072)
    channels = fields.positive_int("num_channels", 3)
    size = _square("image_size", fields.get("image_size", 224), fields, square=False)
    patch = _square("patch_size", fields.get("patch_size", 16), fields, square=True)
    if width % heads:
        fields.problem(f"`hidden_size` must be divisible by `num_attention_heads`. Received: hidden_size={width}, "
                       f"num_attention_heads={heads}")
    elif fields.get("head_dim", width // heads) != width // heads:
        fields.problem(f"`head_dim`={hf['head_dim']!r} is not supported: kiln's ViT splits hidden_size evenly "
                       f"among the heads. Supported: {width // heads}")
    if any(d % patch for d in size):
        fields.problem(f"`image_size`={list(size)} must be divisible by `patch_size`={patch}: kiln's ViT uses "
                       f"every pixel")
    act = fields.supported("hidden_act", "gelu", _HF_ACTIVATIONS, "kiln's ViT uses GELU, exact or tanh-approximated")
    qkv_bias = fields.supported("qkv_bias", True, [True, False], "it must be true or false")
    dropout = fields.fraction("hidden_dropout_prob", 0.0)
    layer_norm_eps = fields.positive_float("layer_norm_eps", 1e-12)
    depth = fields.positive_int("num_hidden_layers", 12)
    architecture = (hf.get("architectures") or [None])[0]
    if architecture == "ViTForMaskedImageModeling":
        fields.problem("`architectures`=['ViTForMaskedImageModeling']: kiln's ViT has no pixel decoder. "
                       "Supported: ViTForImageClassification, ViTModel")
    fields.raise_problems()

    weights = {}
    for key, value in read_weights(folder, loader, hf).items():
        key = key.removeprefix("vit.")
        for pattern, replacement in _HF_NEW_NAMES:
            key = pattern.sub(replacement, key)
        weights[key] = value
    has_classifier = "classifier.weight" in weights
    head = "checkpoint" if has_classifier and num_classes is None else "identity" if num_classes is None else "new"
    dropped: dict[str, list[str]] = {}  # why -> the tensors left out for that reason
    for key in weights:
        if key.startswith("pooler."):
            why = ("kiln's ViT has no pooler; its output is the final [CLS] features, which "
                   "ViTForImageClassification classifies")
        elif key == "embeddings.mask_token":
            why = "a mask token is used only for masked image modelling"
        elif key.startswith("classifier.") and head == "new":
            why = f"num_classes={num_classes} asks for a new head"
        else:
            continue
        dropped.setdefault(why, []).append(key)
    for why, names in dropped.items():
        warn_ignored(loader, names, why + ".")
        for name in names:
            del weights[name]

    if head == "checkpoint":
        outputs = weights["classifier.weight"].shape[0]
    else:
        outputs = width if head == "identity" else num_classes
    model = ViT(num_classes=outputs, input_shape=(*size, channels), patch_size=patch, depth=depth, heads=heads,
                width=width, mlp_ratio=intermediate / width, pooling="cls", dropout=dropout,
                layer_norm_eps=layer_norm_eps, qkv_bias=qkv_bias, activation=_HF_ACTIVATIONS[act])
    plan = {"cls_token": (("embeddings.cls_token",), None), "pos_embed": (("embeddings.position_embeddings",), None),
            "patch_embed.weight": (("embeddings.patch_embeddings.projection.weight",), None),
            "patch_embed.bias": (("embeddings.patch_embeddings.projection.bias",), None),
            "ln_f.weight": (("layernorm.weight",), None), "ln_f.bias": (("layernorm.bias",), None)}
    if head == "checkpoint":
        plan.update({"head.weight": (("classifier.weight",), None), "head.bias": (("classifier.bias",), None)})
    for i in range(depth):
        hf_layer = f"encoder.layer.{i}."
        for kiln_module, hf_module in _HF_BLOCK_NAMES.items():
            for param in ("weight", "bias"):
                plan[f"blocks.{i}.{kiln_module}.{param}"] = ((f"{hf_layer}{hf_module}.{param}",), None)
        for param in ("weight", "bias") if qkv_bias else ("weight",):
            # kiln fuses q, k, v into one (3D, D) projection: q's rows, then k's, then v's
            plan[f"blocks.{i}.attn.qkv.{param}"] = (
                tuple(f"{hf_layer}attention.attention.{n}.{param}" for n in ("query", "key", "value")), concat)
    fit_state(model, plan, weights, loader, folder, "ViT",
              optional=() if head == "checkpoint" else ("head.weight", "head.bias"))
    if head == "identity":  # the output is the [CLS] features themselves
        with torch.no_grad():
            model.head.weight.copy_(torch.eye(width))
            model.head.bias.zero_()
    return model.eval()


def _square(field: str, value, fields, square: bool):
    """An int or [h, w] config value -> (h, w), or the int side when ``square``; problems recorded."""
    sides = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
    if len(sides) != 2 or any(isinstance(d, bool) or not isinstance(d, int) or d <= 0 for d in sides):
        fields.problem(f"`{field}` must be a positive integer or a pair of them. Received: {field}={value!r}")
        return 1 if square else (1, 1)
    if square and sides[0] != sides[1]:
        fields.problem(f"`{field}`={value!r} is not supported: kiln's ViT uses square patches. Supported: one "
                       f"integer, or a pair of equal ones")
    return sides[0] if square else sides
