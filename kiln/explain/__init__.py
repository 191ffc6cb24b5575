"""Explanation tools: look inside a model rather than only at its outputs.

``trace`` writes out back-propagation through a Dense stack with the textbook formulas and
checks them against torch autograd (see kiln/explain/trace.py).
"""

from kiln.explain.trace import LayerTrace, Trace, trace

__all__ = ["trace", "Trace", "LayerTrace"]
