"""Exporting trained models (ONNX)."""

from kiln.export.onnx import export_model_onnx, export_onnx

__all__ = ["export_onnx", "export_model_onnx"]
