"""``attribute(model, x, method=..., target=...)``: how much each input value moved one output.

Five methods over Captum (imported lazily: ``pip install 'kiln[explain]'``):

- ``"ig"``: integrated gradients (Sundararajan et al. 2017). Completeness is checked on every
  call: per row, sum(attributions) = f(x) - f(baseline) within ``tolerance`` (1%); the rows
  that miss it are redone with twice the steps, up to ``max_steps``, and the result says how far
  it got. (A row whose gap is under a tenth of the rows' median gap is measured against that
  tenth: a relative error of a gap near zero is noise.)
- ``"saliency"``: the absolute gradient (Simonyan et al. 2013).
- ``"smoothgrad"``: saliency averaged over noisy copies of the input (Smilkov et al. 2017).
- ``"occlusion"``: the drop in the output when a window of the input is set to the baseline
  (Zeiler & Fergus 2014): image and spectrogram patches, text tokens one at a time.
- ``"shap"``: Shapley values sampled by permutation against a background (kiln/explain/shap.py).

Integer inputs (category indices, token ids) have no gradient, so plain IG gives them nothing
— the common complaint. Here they are attributed *through their embedding*: the embedding
layer's output is what gets interpolated, perturbed or occluded (Captum's
LayerIntegratedGradients does the same; tests/explain check the two agree), and the result is
summed over the embedding width, so a token or a category gets one number. The embedding is
found by running the model once: the innermost module that reads the input's integer tensor
and gives floats.

Shapes: ``x`` is a dict of input tensors keyed by the model's input names (a single tensor for
a one-input model), each ``(rows, ...)``; the attributions have the same shapes (an embedded
input: the shape of its ids).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from kiln.errors import KilnTypeError, KilnValueError, closest_match

__all__ = ["attribute", "Attribution", "METHODS", "TABULAR_KINDS", "infer_kinds", "check_method"]

METHODS = ("ig", "saliency", "smoothgrad", "occlusion", "shap")
TABULAR_KINDS = ("numeric", "binary", "category")
_WINDOWED_KINDS = ("image", "audio", "text", "sequence")


@dataclass
class Attribution:
    """What ``attribute`` found.

    Attributes:
        method: the method used.
        values: input name -> attributions, the input's shape (embedded inputs: their ids' shape).
        target: the output index explained, per row ``(rows,)``.
        output: the output explained (its name for a several-output model, else None).
        n_steps: IG: the step count that met the tolerance (or the last one tried).
        delta: IG / shap: per row, sum(attributions) - (f(x) - f(baseline)) ``(rows,)``.
        gap: IG / shap: per row, f(x) - f(baseline) (shap: f(x) - expected value).
        expected_value: shap: the mean output over the background (per row's target).
        completeness_ok: IG: whether every row met the tolerance.
        notes: what the caller should know (e.g. completeness missed at the step cap).
    """

    method: str
    values: dict
    target: torch.Tensor
    output: str | None = None
    n_steps: int | None = None
    delta: torch.Tensor | None = None
    gap: torch.Tensor | None = None
    expected_value: torch.Tensor | None = None
    completeness_ok: bool | None = None
    notes: list = field(default_factory=list)

    def totals(self) -> dict:
        """Input name -> one number per row ``(rows,)``: the attributions summed over the input."""
        return {name: v.reshape(v.shape[0], -1).sum(dim=1) for name, v in self.values.items()}

    def completeness_error(self) -> torch.Tensor:
        """Per row, |delta| / |f(x) - f(baseline)|: the relative miss of completeness (a gap under a
        tenth of the rows' median gap counts as that tenth: see ``_completeness_scale``)."""
        if self.delta is None:
            raise KilnValueError(f"Completeness applies to 'ig' and 'shap' attributions; these are {self.method!r}.")
        return self.delta.abs() / _completeness_scale(self.gap)


# ---------------------------------------------------------------------- inputs
def infer_kinds(x: dict) -> dict:
    """A kind per input from its tensor alone: integer ``(rows,)``/``(rows, 1)`` -> "category",
    other integer -> "text", float with 2+ dims per row -> "image", else "numeric"."""
    kinds = {}
    for name, t in x.items():
        per_row = tuple(t.shape[1:])
        if not torch.is_floating_point(t):
            kinds[name] = "category" if per_row in ((), (1,)) else "text"
        else:
            kinds[name] = "image" if len(per_row) >= 2 else "numeric"
    return kinds


def check_method(method: str, kinds: dict) -> None:
    """Raise a KilnValueError when ``method`` is unknown or does not apply to these input kinds."""
    if method not in METHODS:
        hint = closest_match(method, list(METHODS))
        raise KilnValueError(f"Unknown explanation method {method!r}; expected one of {list(METHODS)}"
                             + (f" (did you mean {hint!r}?)" if hint else "") + ".")
    if method == "shap":
        other = {n: k for n, k in kinds.items() if k not in TABULAR_KINDS}
        if other:
            raise KilnValueError(f"Method 'shap' plays whole tabular features against a background; it does not "
                                 f"apply to input(s) {other}. Use 'ig' or 'occlusion' for images, spectrograms "
                                 f"and text.")
    if method == "occlusion" and not any(k in _WINDOWED_KINDS for k in kinds.values()):
        raise KilnValueError(f"Method 'occlusion' slides a window over an image, spectrogram or text; the inputs "
                             f"here are tabular ({kinds}). Use 'shap' (one feature at a time against a "
                             f"background) or 'ig'.")


def _as_dict(model, x) -> tuple[dict, bool]:
    """``x`` as a dict, and whether the model is called with the bare tensor (``x`` was one)."""
    if isinstance(x, dict):
        return dict(x), False
    if torch.is_tensor(x):
        return {getattr(getattr(model, "inputs", None), "name", None) or "input": x}, True
    raise KilnTypeError(f"`x` must be a tensor or a dict of tensors keyed by input name. Received: {type(x).__name__}.")


def _call(model, x: dict, single: bool):
    return model(next(iter(x.values())) if single else x)


def _find_embeddings(model, x: dict, single: bool) -> dict:
    """Integer input name -> the innermost module that reads it and gives floats (its embedding)."""
    integer = {n: t for n, t in x.items() if not torch.is_floating_point(t)}
    if not integer:
        return {}
    seen = []  # (module, its integer input) in the order the modules finished: innermost first

    def hook(module, args, output):
        if args and torch.is_tensor(args[0]) and not torch.is_floating_point(args[0]) \
                and torch.is_tensor(output) and torch.is_floating_point(output):
            seen.append((module, args[0]))

    handles = [m.register_forward_hook(hook) for m in model.modules() if m is not model]
    try:
        with torch.no_grad():
            _call(model, x, single)
    finally:
        for h in handles:
            h.remove()
    found = {}
    for name, ids in integer.items():
        same_storage = [m for m, a in seen if a.untyped_storage().data_ptr() == ids.untyped_storage().data_ptr()]
        same_values = [m for m, a in seen if a.numel() == ids.numel() and torch.equal(a.reshape(-1), ids.reshape(-1))]
        modules = same_storage or same_values
        if not modules:
            raise KilnValueError(f"Input {name!r} holds integers (ids or categories) but no embedding layer reads it, "
                                 f"so it has no gradient to attribute through. Give it an Embedding layer, or encode "
                                 f"it one-hot (preprocessing: {{encoding: onehot}}).")
        found[name] = modules[0]
    return found


class _Explained:
    """The model as Captum sees it: float tensors in (inputs, or embedding outputs for integer
    inputs), the chosen output's scores ``(rows, classes)`` out; ids ride along as extra args."""

    def __init__(self, model, x: dict, output: str | None, single: bool):
        self.model, self.output, self.single = model, output, single
        self.names = list(x)
        self.embeddings = _find_embeddings(model, x, single)
        self.ids = {n: x[n] for n in self.embeddings}
        self._replace: dict = {}
        self._bypass = False  # True while embed() looks up real embeddings inside active()
        self._embedding_input_shape: dict = {}  # what each embedding receives, e.g. (rows, 1) after a Reshape
        with torch.no_grad():
            embedded = {}
            with self._capture(embedded):
                _call(model, x, single)
        # what Captum perturbs: the float input itself, or the output of the embedding of an integer input
        self.inputs = tuple(embedded[n] if n in self.embeddings else x[n].float() for n in self.names)

    @contextmanager
    def _capture(self, into: dict):
        handles = []
        for name, module in self.embeddings.items():
            def keep(m, args, out, name=name):
                into[name] = out.detach()
                self._embedding_input_shape[name] = tuple(args[0].shape)
            handles.append(module.register_forward_hook(keep))
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    @contextmanager
    def active(self):
        """While active, each embedding's output is replaced by the tensor Captum passed in."""
        handles = []
        for name, module in self.embeddings.items():
            def replace(m, args, out, name=name):
                return out if self._bypass else self._replace[name]
            handles.append(module.register_forward_hook(replace))
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def embed(self, name: str, ids) -> torch.Tensor:
        """The embedding of ``ids`` for input ``name``, shaped like its Captum tensor (rows as given)."""
        ids = torch.as_tensor(ids).to(self.ids[name])
        shape = self._embedding_input_shape[name]
        self._bypass = True
        try:
            with torch.no_grad():
                out = self.embeddings[name](ids.reshape(len(ids), *shape[1:]))
        finally:
            self._bypass = False
        like = self.inputs[self.names.index(name)]
        return out.detach().to(like.dtype).reshape(len(ids), *like.shape[1:])

    @property
    def extra(self) -> tuple:
        return tuple(self.ids[n] for n in self.embeddings)

    def baseline_for(self, name: str, given) -> torch.Tensor:
        """The baseline in Captum's space: the given one, or zeros; an embedded input's is the
        embedding of its given ids (default id 0: ``<unk>`` for categories, ``<pad>`` for text)."""
        index = self.names.index(name)
        like = self.inputs[index]
        if name in self.embeddings:
            ids = torch.zeros_like(self.ids[name]) if given is None else torch.as_tensor(given).to(self.ids[name])
            ids = ids.expand_as(self.ids[name]) if ids.shape != self.ids[name].shape else ids
            return self.embed(name, ids)
        if given is None:
            return torch.zeros_like(like)
        return torch.as_tensor(given, dtype=like.dtype).expand_as(like).clone()

    def __call__(self, *args):
        floats, ids = args[:len(self.names)], args[len(self.names):]
        x = {}
        for name, t in zip(self.names, floats):
            if name in self.embeddings:
                self._replace[name] = t
            else:
                x[name] = t
        for name, t in zip(self.embeddings, ids):
            x[name] = t
        x = {n: x[n] for n in self.names}
        out = _call(self.model, x, self.single)
        if isinstance(out, dict):
            out = out[self.output]
        out = out.float()
        return out.reshape(out.shape[0], -1)  # (rows, classes); a single unit is (rows, 1)


# ---------------------------------------------------------------------- the API
def attribute(model, x, method: str = "ig", target=None, *, output: str | None = None, baselines: dict | None = None,
              kinds: dict | None = None, n_steps: int = 32, max_steps: int = 512, tolerance: float = 0.01,
              background: dict | None = None, n_samples: int = 25, nt_samples: int = 20,
              internal_batch_size: int | None = 4096) -> Attribution:
    """Attribute one output of ``model`` for each row of ``x`` to its inputs.

    Args:
        model: a kiln (or any torch) model taking a dict of tensors (or one tensor).
        x: dict name -> ``(rows, ...)`` tensor, as the model takes it (a run's ``encode_inputs``).
        method: "ig" (default), "saliency", "smoothgrad", "occlusion" or "shap".
        target: the output unit (class index) to explain: an int, a ``(rows,)`` tensor, or None
            (default: the predicted class; the single unit of a binary or numeric output).
        output: for a several-output model, the output's name.
        baselines: name -> the "absent" value of an input (default zeros; an embedded input: the
            embedding of id 0). Not used by saliency/smoothgrad.
        kinds: name -> "numeric" | "binary" | "category" | "text" | "image" | "audio" | "sequence"
            (default: guessed from the tensors); says which methods apply.
        n_steps, max_steps, tolerance: IG's first step count, its cap, and the completeness
            tolerance (relative, per row; default 1%).
        background: shap: rows the features are replaced from (default: the baselines, one row).
        n_samples: shap: permutations sampled. nt_samples: smoothgrad: noisy copies.

    Returns:
        An :class:`Attribution`.

    Raises:
        KilnValueError: an unknown method or one that does not apply to the inputs, a target
            class the output does not have, an unknown output or baseline name.

    Example::

        a = attribute(model, {"x": x}, method="ig")
        a.values["x"]            # (rows, features)
        a.completeness_ok        # True: sum = f(x) - f(baseline) within 1% on every row
    """
    x, single = _as_dict(model, x)
    kinds = {**infer_kinds(x), **(kinds or {})}
    check_method(method, kinds)
    for name in (baselines or {}):
        if name not in x:
            hint = closest_match(name, list(x))
            raise KilnValueError(f"`baselines` names {name!r}, which is not an input of the model (inputs: "
                                 f"{list(x)})" + (f"; did you mean {hint!r}?" if hint else "") + ".")
    was_training = model.training
    model.eval()
    try:
        explained = _Explained(model, x, _pick_output(model, x, output, single), single)
        with torch.no_grad(), explained.active():
            scores = explained(*explained.inputs, *explained.extra)  # (rows, classes)
        target = _check_target(target, scores, explained.output)
        bases = tuple(explained.baseline_for(n, (baselines or {}).get(n)) for n in explained.names)
        with explained.active():
            result = _METHODS[method](explained, bases, target, scores, kinds, n_steps=n_steps, max_steps=max_steps,
                                      tolerance=tolerance, background=background, n_samples=n_samples,
                                      nt_samples=nt_samples, internal_batch_size=internal_batch_size)
    finally:
        model.train(was_training)
    values = {}
    for name, v in zip(explained.names, result.pop("values")):
        v = v.detach()
        if name in explained.embeddings:  # (rows, ..., width) -> the ids' shape: one number per id
            v = v.sum(dim=-1).reshape(x[name].shape)
        values[name] = v
    return Attribution(method=method, values=values, target=target, output=explained.output, **result)


def _pick_output(model, x, output, single):
    with torch.no_grad():
        out = _call(model, x, single)
    if not isinstance(out, dict):
        if output is not None:
            raise KilnValueError(f"`output={output!r}`: the model has one output; leave `output` out.")
        return None
    if output is None:
        if len(out) == 1:
            return next(iter(out))
        raise KilnValueError(f"The model has {len(out)} outputs {list(out)}; pass output= one of them.")
    if output not in out:
        hint = closest_match(output, list(out))
        raise KilnValueError(f"The model has no output {output!r}; its outputs: {list(out)}"
                             + (f" (did you mean {hint!r}?)" if hint else "") + ".")
    return output


def _check_target(target, scores, output) -> torch.Tensor:
    rows, classes = scores.shape
    where = f"output {output!r}" if output else "the output"
    if target is None:
        return scores.argmax(dim=1) if classes > 1 else torch.zeros(rows, dtype=torch.long)
    t = torch.as_tensor(target)
    if t.is_floating_point() or t.dtype == torch.bool:
        raise KilnValueError(f"`target` must be a class index (int); received {target!r}.")
    t = t.long().expand(rows).clone() if t.dim() == 0 else t.long()
    if t.shape != (rows,):
        raise KilnValueError(f"`target` must be one index or one per row ({rows}); received shape {tuple(t.shape)}.")
    bad = t[(t < 0) | (t >= classes)]
    if len(bad):
        raise KilnValueError(f"Target class {int(bad[0])} does not exist: {where} has {classes} unit(s), indices "
                             f"0..{classes - 1}. Pass target= one of them (or None for the predicted class).")
    return t


# ---------------------------------------------------------------------- the methods
def _ig(explained, bases, target, scores, kinds, *, n_steps, max_steps, tolerance, internal_batch_size, **_):
    """IG with completeness enforced: rows that miss ``tolerance`` are redone with twice the steps."""
    from captum.attr import IntegratedGradients
    ig = IntegratedGradients(explained)
    with torch.no_grad():
        base_scores = explained(*bases, *explained.extra)
    gap = (scores.gather(1, target[:, None]) - base_scores.gather(1, target[:, None]))[:, 0].detach()
    scale = _completeness_scale(gap)
    values = [torch.zeros_like(t) for t in explained.inputs]
    delta = torch.zeros_like(gap)
    todo = torch.arange(len(gap))
    steps = n_steps
    while True:
        part = ig.attribute(tuple(t[todo] for t in explained.inputs), baselines=tuple(b[todo] for b in bases),
                            target=target[todo], additional_forward_args=tuple(i[todo] for i in explained.extra) or None,
                            n_steps=steps, method="gausslegendre", internal_batch_size=internal_batch_size)
        for whole, piece in zip(values, part):
            whole[todo] = piece.detach()
        delta[todo] = sum(v.reshape(len(todo), -1).sum(dim=1) for v in part).detach() - gap[todo]
        todo = todo[delta[todo].abs() > tolerance * scale[todo]]
        if len(todo) == 0 or steps * 2 > max_steps:
            break
        steps *= 2
    ok = len(todo) == 0
    notes = [] if ok else [f"IG completeness missed {tolerance:.0%} on {len(todo)} row(s) at {steps} steps (the cap, "
                           f"max_steps={max_steps}); raise max_steps."]
    return {"values": tuple(values), "n_steps": steps, "delta": delta, "gap": gap, "completeness_ok": ok,
            "notes": notes}


def _completeness_scale(gap: torch.Tensor) -> torch.Tensor:
    """What a row's completeness miss is measured against: its own |f(x) - f(baseline)|, but no less
    than a tenth of the median over the rows explained together — the relative error of a gap near
    zero (an output the baseline already nearly gives) is noise, not a verdict."""
    floor = 0.1 * gap.abs().median() if len(gap) else torch.tensor(0.0)
    return torch.maximum(gap.abs(), floor).clamp_min(1e-6)


def _saliency(explained, bases, target, scores, kinds, **_):
    from captum.attr import Saliency
    inputs = tuple(t.clone().requires_grad_() for t in explained.inputs)
    values = Saliency(explained).attribute(inputs, target=target,
                                           additional_forward_args=explained.extra or None, abs=True)
    return {"values": values}


def _smoothgrad(explained, bases, target, scores, kinds, *, nt_samples, **_):
    from captum.attr import NoiseTunnel, Saliency
    # noise of 15% of each input's range, as in the SmoothGrad paper
    stdevs = tuple(max(float(t.max() - t.min()), 1e-3) * 0.15 for t in explained.inputs)
    inputs = tuple(t.clone().requires_grad_() for t in explained.inputs)
    values = NoiseTunnel(Saliency(explained)).attribute(inputs, nt_type="smoothgrad", nt_samples=nt_samples,
                                                        stdevs=stdevs, target=target,
                                                        additional_forward_args=explained.extra or None, abs=True)
    return {"values": values}


def _occlusion(explained, bases, target, scores, kinds, **_):
    from captum.attr import Occlusion
    windows = []
    for t in explained.inputs:
        per_row = tuple(t.shape[1:])
        if len(per_row) >= 3:  # image / spectrogram (H, W, C): an eighth of each side, all channels
            windows.append((max(1, per_row[0] // 8), max(1, per_row[1] // 8), *per_row[2:]))
        elif len(per_row) == 2:  # tokens (length, width): one token at a time
            windows.append((1, per_row[1]))
        else:  # a tabular input in a multimodal model: the whole input
            windows.append(per_row)
    values = Occlusion(explained).attribute(explained.inputs, sliding_window_shapes=tuple(windows),
                                            strides=tuple(windows), baselines=bases, target=target,
                                            additional_forward_args=explained.extra or None,
                                            perturbations_per_eval=8)
    return {"values": values}


def _shap(explained, bases, target, scores, kinds, *, background, n_samples, **_):
    from kiln.explain.shap import shapley_values
    return shapley_values(explained, bases, target, scores, background=background, n_samples=n_samples)


_METHODS = {"ig": _ig, "saliency": _saliency, "smoothgrad": _smoothgrad, "occlusion": _occlusion, "shap": _shap}
