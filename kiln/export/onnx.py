"""ONNX export, checked: the exported graph's outputs are compared with torch's at export.

Why check at export: an ONNX file that silently computes something else is worse than none.
After writing, onnxruntime runs the file on real rows (a run's test split, one row and many)
and every output must match torch's (max abs difference below ``tolerance``, NaN only where
torch has NaN), else a KilnError says by how much and where.

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


def export_model_onnx(model, example_inputs: dict, path, *, tolerance: float = 1e-4,
                      verify_inputs: list[dict] | None = None) -> Path:
    """Export ``model`` (called with a dict of tensors) to ``path``; verify with onnxruntime.

    Args:
        model: called with ``{name: tensor}``; its output a tensor, a tuple or a dict of them.
        example_inputs: the batch the graph is traced with (its batch axis is made dynamic).
        tolerance: the largest absolute difference allowed between torch and onnxruntime.
        verify_inputs: batches both run on and compare, every output of each (default: the
            example alone). A NaN where the other side has a number (or the reverse) fails,
            as does a different number of outputs or a different shape.

    Raises:
        KilnError: the file computes something else (the file is kept for inspection).
    """
    _require_onnx()
    import onnxruntime as ort
    path = Path(path)
    names = list(example_inputs)
    wrapper = _PositionalInputs(model, names).eval()
    args = tuple(example_inputs[n] for n in names)
    batch = torch.export.Dim("batch", min=1)
    dynamic = tuple({0: batch} for _ in args)
    with torch.no_grad():
        program = torch.onnx.export(wrapper, args, dynamo=True, dynamic_shapes=(dynamic,), input_names=names)  # (varargs,)
    program.save(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for inputs in verify_inputs or [example_inputs]:
        batch_args = tuple(inputs[n] for n in names)
        with torch.no_grad():
            expected = wrapper(*batch_args)
        expected = expected if isinstance(expected, tuple) else (expected,)
        feeds = {i.name: a.cpu().numpy() for i, a in zip(session.get_inputs(), batch_args)}
        got = session.run(None, feeds)
        rows = len(batch_args[0]) if batch_args else 0
        worst, where = _worst_difference(got, [e.cpu().numpy() for e in expected])
        if not worst <= tolerance:
            raise KilnError(f"The ONNX export of {path.name} differs from torch by {worst:.3g} (> {tolerance}) "
                            f"{where} on a batch of {rows} rows; the file was kept for inspection but should not "
                            f"be deployed.")
    return path


def _worst_difference(got: list, expected: list) -> tuple[float, str]:
    """The largest absolute difference over every output, and which output; inf for a missing
    output, a shape mismatch or a NaN on one side only (NaN == NaN counts as agreement)."""
    if len(got) != len(expected):
        return float("inf"), f"(onnxruntime gave {len(got)} outputs, torch {len(expected)})"
    worst, where = 0.0, "in no output"
    for k, (g, e) in enumerate(zip(got, expected)):
        g, e = np.asarray(g, dtype=np.float64), np.asarray(e, dtype=np.float64)
        if g.shape != e.shape:
            return float("inf"), f"in output {k} (shape {g.shape} vs torch's {e.shape})"
        nan_g, nan_e = np.isnan(g), np.isnan(e)
        if (nan_g != nan_e).any():
            return float("inf"), f"in output {k} (NaN on one side only)"
        both = ~nan_e
        diff = float(np.max(np.abs(g[both] - e[both]))) if both.any() else 0.0
        if diff > worst or k == 0:
            worst, where = max(worst, diff), f"in output {k}"
    return worst, where


def export_onnx(run, path, *, batch_size: int = 4, rows=None, max_rows: int = 64) -> Path:
    """Export a loaded run (kiln.workflows.run.Run), verified on real rows.

    The graph is traced on ``batch_size`` rows and checked, every output, on one row and on up to
    ``max_rows`` rows: ``rows`` (raw rows, a DataFrame) when given, else the run's test split
    (its config's data source and split, through the run's fitted features). Zeros, which
    exercise little of a model, are used only when the run's data cannot be read, with a warning.
    """
    import warnings
    if rows is None:
        try:
            rows = _test_rows(run)
        except Exception as err:  # the data moved or is gone: still export, but say what was checked
            warnings.warn(f"kiln export: the run's data cannot be read ({type(err).__name__}: {err}); the ONNX "
                          f"file is verified on all-zero inputs only. Pass rows= to verify on real rows.",
                          stacklevel=2)
    if rows is not None and len(rows):
        rows = rows.iloc[:max_rows]
        encoded = run.encode_inputs(rows)
        examples = {name: _rows(t, 0, batch_size) for name, t in encoded.items()}
        verify = [{name: _rows(t, 0, 1) for name, t in encoded.items()}, encoded]
    else:
        examples = {}
        for feature in run.inputs:
            spec = feature.spec()
            dtype = torch.int64 if spec["dtype"].startswith("int") else torch.float32
            examples[feature.name] = torch.zeros((batch_size,) + tuple(spec["shape"]), dtype=dtype)
        verify = [{name: _rows(t, 0, 1) for name, t in examples.items()}, examples]
    run.model.eval()
    return export_model_onnx(run.model, examples, path, verify_inputs=verify)


def _rows(tensor, start: int, stop: int):
    return torch.as_tensor(tensor)[start:stop]


def _test_rows(run):
    """The run's test split as raw rows (its validation, then train split when the test one is empty)."""
    from kiln.config import load_config_text
    from kiln.data import read_source, split_frame
    config = load_config_text(run.config_text)
    data = config.data
    frame = read_source(data.source, format=data.format, **(data.options or {}))
    split = data.split
    parts = split_frame(frame, train=split.train, validation=split.validation, test=split.test,
                        stratify=split.stratify, by_column=split.by_column, seed=split.seed)
    return next(parts[name] for name in ("test", "validation", "train") if len(parts.get(name, ())))
