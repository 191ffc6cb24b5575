"""Shrink a trained model: pruning, knowledge distillation, int8 quantization (QAT too), and the table
that measures each variant against fp32 (``kiln compress RUN ...`` is the workflow on runs).

Optional dependencies (torchao, onnxruntime) are imported only by the backends that use them.
"""

from kiln.compress.distill import distill, kd_loss
from kiln.compress.heads import prune_heads
from kiln.compress.measurement import Variant, measure, format_table
from kiln.compress.prune import PruneResult, prune, sparsity
from kiln.compress.qat import finish_qat, prepare_qat, qat_fine_tune
from kiln.compress.quantize import QuantizeResult, quantize, quantize_onnx

__all__ = ["prune", "PruneResult", "sparsity", "distill", "kd_loss", "quantize", "quantize_onnx", "QuantizeResult",
           "measure", "Variant", "format_table", "prepare_qat", "qat_fine_tune", "finish_qat",
           "prune_heads"]
