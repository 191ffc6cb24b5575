"""``model.summary()``: Keras's table of layers, output shapes and parameter counts.

Output shapes come from one forward pass of a 2-sample example batch with hooks on every
direct child layer, so the table works for Sequential, functional, subclassed models and
plain torch modules inside them alike.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["summary_text", "count_params"]


def count_params(module: nn.Module) -> tuple[int, int]:
    """(trainable, non-trainable) counts; buffers such as BatchNorm's moving statistics count
    as non-trainable, as in Keras."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
    frozen += sum(b.numel() for b in module.buffers() if b.is_floating_point())
    return trainable, frozen


def _children(model) -> list[tuple[str, nn.Module]]:
    layers = getattr(model, "layers", None)
    if layers is not None:
        return [(getattr(l, "name", type(l).__name__.lower()), l) for l in layers]
    return list(model.named_children())


def _output_shapes(model, children) -> dict[int, str]:
    """Each child's output shape; axes whose length follows a variable-length input are None.

    Runs the model on its recorded example, and again on an example with other lengths on
    the variable axes when it has any (``model._variable_length_example()``)."""
    example = getattr(model, "_example_input", None)
    if example is None:
        return {}
    first = _hooked_run(model, children, example)
    alt_maker = getattr(model, "_variable_length_example", None)
    alt_example = alt_maker() if alt_maker is not None else None
    if alt_example is None:
        return {key: _shape_str(out) for key, out in first.items()}
    try:
        second = _hooked_run(model, children, alt_example)
    except Exception:  # a model that cannot take other lengths after all
        second = {}
    return {key: _shape_str(out, second.get(key)) for key, out in first.items()}


def _hooked_run(model, children, example) -> dict[int, object]:
    outputs: dict[int, object] = {}

    def hook(module, _inputs, output):
        outputs.setdefault(id(module), output)

    handles = [layer.register_forward_hook(hook) for _, layer in children]
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    from kiln.utils.tree import map_structure
    example = map_structure(lambda t: t.to(device) if torch.is_tensor(t) else t, example)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return outputs


def _shape_str(output, other=None) -> str:
    if torch.is_tensor(output):
        dims = tuple(output.shape[1:])
        if torch.is_tensor(other) and other.dim() == output.dim():
            dims = tuple(None if a != b else a for a, b in zip(dims, other.shape[1:]))
        return str((None,) + dims)
    if isinstance(output, (list, tuple)):
        others = other if isinstance(other, (list, tuple)) and len(other) == len(output) else [None] * len(output)
        return "[" + ", ".join(_shape_str(o, p) for o, p in zip(output, others)) + "]"
    return "?"


def _fmt(n: int) -> str:
    return f"{n:,}"


def _size(n_bytes: int) -> str:
    size = float(n_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.2f} {unit}"
        size /= 1024
    return ""


def _bytes(module: nn.Module) -> tuple[int, int]:
    """(trainable, non-trainable) sizes in bytes, from each weight's own dtype (float64 = 8)."""
    trainable = sum(p.numel() * p.element_size() for p in module.parameters() if p.requires_grad)
    frozen = sum(p.numel() * p.element_size() for p in module.parameters() if not p.requires_grad)
    frozen += sum(b.numel() * b.element_size() for b in module.buffers() if b.is_floating_point())
    return trainable, frozen


def _trainable_flag(layer) -> str:
    """Keras's "Trainable" column: Y / N, or "-" for a layer without weights."""
    if not any(True for _ in layer.parameters()):
        return "-"
    return "Y" if any(p.requires_grad for p in layer.parameters()) else "N"


def summary_text(model, show_trainable: bool = False) -> str:
    children = _children(model)
    shapes = _output_shapes(model, children)
    rows = []
    for name, layer in children:
        n = sum(count_params(layer))
        built = getattr(layer, "built", True)
        rows.append((f"{name} ({type(layer).__name__})", shapes.get(id(layer), "?"),
                     _fmt(n) if built else "0 (unbuilt)", _trainable_flag(layer)))
    w0 = max([len("Layer (type)")] + [len(r[0]) for r in rows]) + 2
    w1 = max([len("Output Shape")] + [len(r[1]) for r in rows]) + 2
    w2 = max([len("Param #")] + [len(r[2]) for r in rows])
    w3 = len("  Trainable") if show_trainable else 0
    width = w0 + w1 + w2 + w3 + 4
    header = f"{'Layer (type)':<{w0}}{'Output Shape':<{w1}}{'Param #':>{w2}}"
    if show_trainable:
        header += "  Trainable"
    lines = [f'Model: "{getattr(model, "name", type(model).__name__)}"', "┏" + "━" * (width - 2) + "┓",
             f"┃ {header} ┃", "┡" + "━" * (width - 2) + "┩"]
    for i, (a, b, c, t) in enumerate(rows):
        flag = f"{t:>{w3}}" if show_trainable else ""
        lines.append(f"│ {a:<{w0}}{b:<{w1}}{c:>{w2}}{flag} │")
        if i < len(rows) - 1:
            lines.append("├" + "─" * (width - 2) + "┤")
    lines.append("└" + "─" * (width - 2) + "┘")
    trainable, frozen = count_params(model)
    trainable_bytes, frozen_bytes = _bytes(model)
    total = trainable + frozen
    lines += [f" Total params: {_fmt(total)} ({_size(trainable_bytes + frozen_bytes)})",
              f" Trainable params: {_fmt(trainable)} ({_size(trainable_bytes)})",
              f" Non-trainable params: {_fmt(frozen)} ({_size(frozen_bytes)})"]
    return "\n".join(lines)
