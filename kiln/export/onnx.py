"""ONNX export, checked: the exported graph's outputs are compared with torch's at export.

Why check at export: an ONNX file that silently computes something else is worse than none.
After writing, onnxruntime runs the file on a real batch and the outputs must match torch's
(max abs difference below ``tolerance``), else a KilnError says by how much.

Uses ``torch.onnx.export(..., dynamo=True)`` (needs ``onnxscript``) with a dynamic batch axis.
Install with ``pip install "kiln[export]"``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kiln.errors import KilnError

__all__ = ["export_model_onnx", "export_onnx"]


class _PositionalInputs(torch.nn.Module):
    """ONNX graphs take positional inputs; kiln run models take a dict keyed by feature."""

    def __init__(self, model, names):
        super().__init__()
        self.model = model
        self.names = list(names)

    def forward(self, *tensors):
        out = self.model(dict(zip(self.names, tensors)))
        return tuple(out.values()) if isinstance(out, dict) else out


def _require_onnx():
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise KilnError(f"ONNX export needs onnx, onnxscript and onnxruntime: pip install \"kiln[export]\" ({err})")


def export_model_onnx(model, example_inputs: dict, path, *, tolerance: float = 1e-4) -> Path:
    """Export ``model`` (called with a dict of tensors) to ``path``; verify with onnxruntime."""
    _require_onnx()
    import onnxruntime as ort
    path = Path(path)
    names = list(example_inputs)
    wrapper = _PositionalInputs(model, names).eval()
    args = tuple(example_inputs[n] for n in names)
    batch = torch.export.Dim("batch", min=1)
    dynamic = tuple({0: batch} for _ in args)
    with torch.no_grad():
        expected = wrapper(*args)
        program = torch.onnx.export(wrapper, args, dynamo=True, dynamic_shapes=(dynamic,), input_names=names)  # (varargs,)
    program.save(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: a.cpu().numpy() for i, a in zip(session.get_inputs(), args)}
    got = session.run(None, feeds)
    expected = expected if isinstance(expected, tuple) else (expected,)
    worst = max(float(np.max(np.abs(g - e.cpu().numpy()))) for g, e in zip(got, expected))
    if worst > tolerance:
        raise KilnError(f"The ONNX export of {path.name} differs from torch by {worst:.3g} (> {tolerance}); "
                        f"the file was kept for inspection but should not be deployed.")
    return path


def export_onnx(run, path, *, batch_size: int = 4) -> Path:
    """Export a loaded run (kiln.workflows.run.Run) using zeros shaped like its inputs."""
    examples = {}
    for feature in run.inputs:
        spec = feature.spec()
        dtype = torch.int64 if spec["dtype"].startswith("int") else torch.float32
        examples[feature.name] = torch.zeros((batch_size,) + tuple(spec["shape"]), dtype=dtype)
    run.model.eval()
    return export_model_onnx(run.model, examples, path)
