"""Dynamic int8 quantization: int8 weights, activations quantized per batch at run time.

Three backends, because which one is fastest depends on the CPU (docs: ENVIRONMENT.md — on
AVX2 machines without VNNI torch's int8 is often *slower* than fp32, ONNX Runtime's often
faster):

- ``"torch"``: ``torch.ao.quantization.quantize_dynamic`` (fbgemm int8 kernels).
- ``"torchao"``: ``torchao.quantization.quantize_(Int8DynamicActivationInt8WeightConfig())``.
- ``"onnx"``: ONNX Runtime's ``quantize_dynamic`` on the exported graph (``quantize_onnx``);
  it quantizes every MatMul/Gemm, so attention projections and recurrent input projections
  too.

The torch backends act on ``nn.Linear``. kiln's ``Dense`` keeps its kernel in Keras's layout and
is not an ``nn.Linear``, so ``as_linear`` first swaps each Dense for an exactly equivalent
``DenseAsLinear`` (``activation(linear(x))``); Dense layers named in ``keep_fp32`` stay as they
are and are not quantized. Layers dynamic int8 does not cover here (Conv, kiln's
LSTM/GRU/Embedding/MultiHeadAttention, whose weights are raw parameters) stay fp32, and
``QuantizeResult.fp32_layers`` says which and why.

Saving (``int8_state``/``dequantized_state``): kiln never pickles, and a quantized torch
module's packed weights are not plain tensors. A compressed run therefore stores the int8
weights with per-output-channel scales as safetensors plus a JSON recipe (which layers), and
the fp32-layout weights *dequantized* from them (``q * scale``) so every existing loader
works; the int8 ONNX graph is stored for the ONNX backend.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kiln.errors import KilnError, KilnValueError

__all__ = ["DenseAsLinear", "QuantizeResult", "as_linear", "quantize", "quantize_onnx", "quantize_onnx_static",
           "int8_weights", "BACKENDS"]

BACKENDS = ("torch", "torchao", "onnx")
_UNCOVERED = {  # kiln layer class -> why dynamic int8 leaves it fp32 in this version
    "Conv1D": "dynamic int8 has no convolution kernels (static int8 would; not built yet)",
    "Conv2D": "dynamic int8 has no convolution kernels (static int8 would; not built yet)",
    "Conv3D": "dynamic int8 has no convolution kernels (static int8 would; not built yet)",
    "LSTM": "kiln's LSTM keeps raw weights, not an nn.LSTM (the onnx backend quantizes its input MatMul)",
    "GRU": "kiln's GRU keeps raw weights, not an nn.GRU (the onnx backend quantizes its input MatMul)",
    "SimpleRNN": "kiln's SimpleRNN keeps raw weights (the onnx backend quantizes its input MatMul)",
    "Embedding": "int8 embedding tables are not built yet",
    "MultiHeadAttention": "its projections are raw weights, not nn.Linear (the onnx backend quantizes them)",
}


class DenseAsLinear(nn.Module):
    """A kiln ``Dense`` as ``activation(nn.Linear(x))``: same outputs, a module torch can quantize."""

    def __init__(self, dense):
        super().__init__()
        in_dim, units = dense.kernel.shape  # kiln layout (in, units); nn.Linear wants (units, in)
        self.name = dense.name
        self.linear = nn.Linear(in_dim, units, bias=dense.bias is not None)
        with torch.no_grad():
            self.linear.weight.copy_(dense.kernel.detach().t())
            if dense.bias is not None:
                self.linear.bias.copy_(dense.bias.detach())
        self.activation = dense.activation

    def forward(self, x):
        return self.activation(self.linear(x))


@dataclass
class QuantizeResult:
    """A quantized copy and what it covers."""

    model: Any
    backend: str
    quantized_layers: list = field(default_factory=list)  # names (dotted module paths)
    fp32_layers: dict = field(default_factory=dict)  # name -> why it stayed fp32


def _replace(model, path: str, new: nn.Module) -> None:
    parent_path, _, attr = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    old = getattr(parent, attr)
    setattr(parent, attr, new)
    # A functional model calls its layers through its graph's nodes, not its _modules.
    for node in getattr(parent, "_nodes", []):
        if node.layer is old:
            node.layer = new


def as_linear(model, keep_fp32=(), inplace: bool = False) -> tuple[nn.Module, list[str], dict]:
    """A deep copy of ``model`` (or ``model`` itself with ``inplace``) with every kiln Dense
    (except ``keep_fp32`` names) as ``DenseAsLinear``.

    Returns ``(model, swapped names, {name: why fp32} for layers dynamic int8 does not cover)``.
    """
    from kiln.layers.dense import Dense
    model = model if inplace else copy.deepcopy(model)
    swapped, fp32 = [], {}
    for path, module in list(model.named_modules()):
        if not path:
            continue
        kind = type(module).__name__
        if isinstance(module, Dense) and module.built:
            if path in keep_fp32:
                fp32[path] = "kept fp32 by the accuracy fallback"
            else:
                _replace(model, path, DenseAsLinear(module))
                swapped.append(path)
        elif kind in _UNCOVERED:
            fp32[path] = _UNCOVERED[kind]
    return model.eval(), swapped, fp32


def _linear_paths(model) -> list[str]:
    return [p for p, m in model.named_modules() if isinstance(m, nn.Linear)]


def quantize(model, dtype: str = "int8", *, backend: str = "torch", keep_fp32=(),
             inplace: bool = False, per_channel: bool = False) -> QuantizeResult:
    """Dynamic int8 quantization of a copy of ``model`` (of ``model`` itself with ``inplace``).

    Args:
        model: a kiln model or any ``nn.Module``.
        dtype: only "int8" in this version.
        backend: "torch" (default, torch.ao's fbgemm kernels) or "torchao". For ONNX Runtime use
            ``quantize_onnx`` on an exported graph.
        keep_fp32: layer names (as in ``model.named_modules()``) to leave in fp32.
        inplace: change ``model`` itself (Keras 3's ``model.quantize``) instead of a copy.
        per_channel: torch backend only: one weight scale per output channel, ``max|w| / 127``
            (the grid ``int8_weights`` stores and QAT trains on) instead of torch.ao's default
            one scale per layer (default False).

    Example::

        result = kiln.compress.quantize(model, "int8")
        result.model(x)   # int8 Linear layers; result.fp32_layers says what stayed fp32
    """
    if dtype != "int8":
        raise KilnValueError(f"Received an invalid value for `dtype`, expected 'int8' (the only quantization "
                             f"kiln builds so far). Received: dtype={dtype!r}")
    if backend not in ("torch", "torchao"):
        hint = " Quantize an exported graph with kiln.compress.quantize_onnx." if backend == "onnx" else ""
        raise KilnValueError(f"Received an invalid value for `backend`, expected 'torch' or 'torchao'. "
                             f"Received: backend={backend!r}.{hint}")
    converted, swapped, fp32 = as_linear(model, keep_fp32, inplace)
    linears = [p for p in _linear_paths(converted)
               if p.removesuffix(".linear") not in keep_fp32 and p not in keep_fp32]
    if not linears:
        return QuantizeResult(converted, backend, [], fp32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notice; torchao's missing-CUDA-kernel notes
        if backend == "torch":
            from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic
            qconfig = _per_channel_qconfig() if per_channel else default_dynamic_qconfig
            qmodel = quantize_dynamic(converted, {p: qconfig for p in linears}, dtype=torch.qint8,
                                      inplace=True)  # ``converted`` is already a copy unless asked
        else:
            try:
                from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
            except ImportError as err:
                raise KilnError(f"backend='torchao' needs torchao: pip install torchao ({err}).") from err
            wanted = set(linears)
            quantize_(converted, Int8DynamicActivationInt8WeightConfig(), filter_fn=lambda m, fqn: fqn in wanted)
            qmodel = converted
    names = [p.removesuffix(".linear") for p in linears]
    return QuantizeResult(qmodel.eval(), backend, names, fp32)


def _per_channel_qconfig():
    """torch.ao dynamic int8 with symmetric per-output-channel weights over -127..127, so the
    scale is ``max|w| / 127`` exactly as ``int8_weights`` computes it (torch.ao's own
    per-channel default spans -128..127 and divides by 127.5: a different grid)."""
    from torch.ao.quantization import PerChannelMinMaxObserver, QConfig, default_dynamic_quant_observer
    weight = PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
                                                quant_min=-127, quant_max=127)
    return QConfig(activation=default_dynamic_quant_observer, weight=weight)


def int8_weights(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel int8 of a ``(out, in)`` weight: ``(q int8, scale (out,))``
    with ``weight ~= q * scale[:, None]`` (the scheme fbgemm's and ONNX Runtime's kernels use)."""
    w = weight.detach().float()
    scale = w.abs().amax(dim=1).clamp_min(1e-12) / 127.0
    q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scale


def quantize_onnx(source, target, *, exclude_nodes=(), per_channel: bool = False) -> Path:
    """ONNX Runtime dynamic int8 of an fp32 ONNX file: every MatMul/Gemm (attention and
    recurrent input projections included); Conv stays fp32 (ConvInteger is slow on CPUs)."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as err:
        raise KilnError(f"The onnx backend needs onnxruntime: pip install \"kiln[export]\" ({err}).") from err
    target = Path(target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"],
                         nodes_to_exclude=list(exclude_nodes), per_channel=per_channel)
    return target


def quantize_onnx_static(source, target, calibration: list[dict]) -> Path:
    """ONNX Runtime static int8 of an fp32 ONNX file: activation ranges fixed from
    ``calibration`` batches (``[{input name: np.ndarray}, ...]``), so Conv is quantized too
    (QDQ format; uint8 activations, int8 per-channel weights — the pairing ONNX Runtime
    recommends for AVX2 CPUs)."""
    try:
        from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                              quantize_static)
    except ImportError as err:
        raise KilnError(f"Static int8 needs onnxruntime: pip install \"kiln[export]\" ({err}).") from err
    if not calibration:
        raise KilnValueError("Static int8 needs calibration rows; received none. Pass --calibration-rows N > 0.")

    class _Batches(CalibrationDataReader):
        def __init__(self):
            self._left = iter(calibration)

        def get_next(self):
            return next(self._left, None)

    target = Path(target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_static(str(source), str(target), _Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return target
