"""Explanation tools: look inside a model rather than only at its outputs.

``attribute`` (kiln/explain/attribute.py) attributes a model's output to its inputs with
integrated gradients, saliency, SmoothGrad, occlusion or sampled Shapley values (Captum,
imported only when called: ``pip install 'kiln[explain]'``); integer inputs go through their
embedding. The run-level pieces: per-feature attributions (tabular.py), permutation importance
(importance.py), the completeness and randomisation checks (checks.py), pictures and the report
section (render.py), and explanations.json in a run folder (folder.py).

``trace`` writes out back-propagation through a Dense stack with the textbook formulas and
checks them against torch autograd (see kiln/explain/trace.py).
"""

from kiln.explain.attribute import Attribution, attribute
from kiln.explain.trace import LayerTrace, Trace, trace

__all__ = ["attribute", "Attribution", "trace", "Trace", "LayerTrace"]
