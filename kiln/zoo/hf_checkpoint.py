"""Reading a Hugging Face checkpoint folder: ``config.json`` and safetensors weights, never pickle.

The zoo's loaders (``load_hf_bert``, ``load_hf_gpt2``, ``load_hf_vit``) share what is not about
one architecture: finding and reading the files, checking ``model_type``, collecting every
config problem into one error, and fitting the renamed tensors into a kiln model with one error
that names each missing, unexpected or misshapen tensor. The renaming itself stays in each
model's file, beside the module names it targets.

    config = read_config(folder, "bert", "load_hf_bert")
    weights = read_weights(folder, "load_hf_bert")          # {name: float32 tensor}

What is read: ``model.safetensors``, or ``model.safetensors.index.json`` and the shards it
lists (``save_pretrained(..., max_shard_size=...)``). A folder holding only pickled weights
(``pytorch_model.bin``) is refused with the command that converts it; kiln never unpickles.
Nothing is downloaded.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Collection
from pathlib import Path

import torch

from kiln.errors import KilnValueError

__all__ = ["read_config", "read_weights", "ConfigFields", "fit_state", "warn_ignored"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
# Weights kiln will not read: pickles (torch.load runs arbitrary code) and other frameworks' formats.
_OTHER_FORMATS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "flax_model.msgpack")
# model_type -> the kiln loader that reads it, to point a user at the right one.
_LOADERS = {"bert": "load_hf_bert (from kiln.zoo.bert import load_hf_bert)",
            "gpt2": "load_hf_gpt2 (from kiln.zoo.gpt import load_hf_gpt2)",
            "vit": "load_hf_vit (from kiln.zoo.vit import load_hf_vit)"}
_LISTED = 8  # tensor names shown per kind of problem; the rest are counted


def read_config(folder, model_type: str, loader: str) -> dict:
    """``config.json`` of ``folder`` as a dict, checked to describe a ``model_type`` model.

    Raises:
        KilnValueError: the folder or its config.json is missing or unreadable, or the config is
            for another ``model_type`` (the message names the kiln loader for it, if any).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise KilnValueError(f"{loader} reads a local folder written by `save_pretrained`; "
                             f"{str(folder)!r} is not a directory. (kiln downloads nothing: fetch the "
                             f"checkpoint first, e.g. with `huggingface-cli download`.)")
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise KilnValueError(f"{loader} cannot load {str(folder)!r}: {CONFIG_FILE} is missing. Expected a folder "
                             f"written by `save_pretrained` (config.json + model.safetensors). "
                             f"Found: {_listing(folder)}.")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise KilnValueError(f"{loader} cannot read {str(path)!r}: it is not valid JSON ({err}).") from None
    if not isinstance(config, dict):
        raise KilnValueError(f"{loader} cannot read {str(path)!r}: expected a JSON object, "
                             f"received a {type(config).__name__}.")
    found = config.get("model_type")
    if found is not None and found != model_type:
        other = _LOADERS.get(found)
        hint = f" Load it with {other}." if other else f" kiln loads these model types: {sorted(_LOADERS)}."
        raise KilnValueError(f"{loader} reads model_type={model_type!r} checkpoints; {str(path)!r} has "
                             f"model_type={found!r}.{hint}")
    return config


def read_weights(folder, loader: str, config: dict | None = None) -> dict[str, torch.Tensor]:
    """Every tensor of the checkpoint in ``folder`` by its Hugging Face name, floats as float32.

    Reads ``model.safetensors``, else the shards listed by ``model.safetensors.index.json``.

    Raises:
        KilnValueError: no safetensors weights (pickled ``pytorch_model.bin`` is refused with the
            command that converts it), a shard that is missing or lacks a tensor the index
            promises, or a file safetensors cannot read.
    """
    from safetensors import safe_open

    folder = Path(folder)
    single, index = folder / WEIGHTS_FILE, folder / INDEX_FILE
    if single.is_file():
        plan = {single: None}  # None: every tensor in the file
    elif index.is_file():
        plan = _shards(index, loader)
    else:
        raise _no_safetensors(folder, loader, config or {})
    tensors = {}
    for path, names in plan.items():
        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata() or {}
                if metadata.get("format", "pt") not in ("pt", "np"):
                    raise KilnValueError(f"{loader} reads PyTorch checkpoints; {path.name} was written by "
                                         f"format={metadata['format']!r}. Re-save it from the PyTorch class "
                                         f"with `save_pretrained`.")
                available = set(f.keys())
                lacking = sorted(set(names or ()) - available)
                if lacking:
                    raise KilnValueError(f"{loader}: {INDEX_FILE} in {str(folder)!r} places {_names(lacking)} in "
                                         f"{path.name}, which does not hold them. The checkpoint is incomplete or "
                                         f"its shards are mixed up; save it again.")
                for name in (names if names is not None else sorted(available)):
                    tensor = f.get_tensor(name)
                    tensors[name] = tensor.float() if tensor.is_floating_point() else tensor
        except KilnValueError:
            raise
        except Exception as err:  # safetensors' own errors: a truncated or foreign file
            raise KilnValueError(f"{loader} cannot read {str(path)!r} as safetensors: {err}") from None
    return tensors


def _shards(index: Path, loader: str) -> dict[Path, list[str]]:
    """shard path -> the tensor names the index places in it."""
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise KilnValueError(f"{loader} cannot read {str(index)!r}: expected JSON with a 'weight_map' "
                             f"({type(err).__name__}: {err}).") from None
    plan: dict[Path, list[str]] = {}
    for name, shard in weight_map.items():
        path = index.parent / str(shard)
        if Path(str(shard)).name != str(shard):  # a shard is a file beside the index, never elsewhere
            raise KilnValueError(f"{loader}: {INDEX_FILE} names the shard {shard!r} for {name!r}; shards must be "
                                 f"plain file names in the checkpoint folder.")
        plan.setdefault(path, []).append(name)
    absent = sorted(p.name for p in plan if not p.is_file())
    if absent:
        raise KilnValueError(f"{loader}: {INDEX_FILE} in {str(index.parent)!r} lists shards that are missing: "
                             f"{absent}. Copy every model-*.safetensors file of the checkpoint.")
    return plan


def _no_safetensors(folder: Path, loader: str, config: dict) -> KilnValueError:
    other = [name for name in _OTHER_FORMATS if (folder / name).is_file()]
    if not other:
        variants = sorted(p.name for p in folder.glob("*.safetensors"))
        hint = (f" Its safetensors files {variants} have other names: a `variant` (model.fp16.safetensors) or an "
                f"adapter is not read; save the full model without `variant`." if variants else "")
        return KilnValueError(f"{loader} cannot load {str(folder)!r}: neither {WEIGHTS_FILE} nor {INDEX_FILE} is "
                              f"there. Found: {_listing(folder)}.{hint} Save the model with "
                              f"`save_pretrained(folder, safe_serialization=True)`.")
    architectures = config.get("architectures")
    cls = architectures[0] if architectures else "AutoModel"
    which = "" if architectures else "  # or the class the checkpoint was saved from, to keep its head"
    return KilnValueError(
        f"{loader} cannot load {str(folder)!r}: its weights are {other[0]}, which kiln does not read (a pickle can "
        f"run arbitrary code when loaded; kiln reads safetensors only). If you trust the file, convert it once "
        f"with transformers:\n"
        f"    from transformers import {cls}{which}\n"
        f"    {cls}.from_pretrained({str(folder)!r}).save_pretrained({str(folder)!r}, safe_serialization=True)\n"
        f"then call {loader} again.")


def _listing(folder: Path) -> str:
    names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    return repr(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")


def _names(names, quote: bool = True) -> str:
    names = list(names)
    shown = ", ".join(repr(n) if quote else str(n) for n in names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


class ConfigFields:
    """Reads config.json fields with transformers' defaults, collecting every problem for one error.

    Example::

        fields = ConfigFields(hf, "load_hf_gpt2", folder, "GPT-2")
        n_embd = fields.positive_int("n_embd", 768)
        fields.supported("scale_attn_by_inverse_layer_idx", False, [False], "kiln scales every layer alike")
        fields.raise_problems()
    """

    def __init__(self, config: dict, loader: str, folder, family: str):
        self.config, self.loader, self.folder, self.family = config, loader, str(folder), family
        self.problems: list[str] = []

    def get(self, field: str, default):
        value = self.config.get(field, default)
        return default if value is None else value

    def positive_int(self, field: str, default: int) -> int:
        value = self.get(field, default)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            self.problems.append(f"`{field}` must be a positive integer. Received: {field}={value!r}")
            return default
        return value

    def fraction(self, field: str, default: float) -> float:
        """A probability in [0, 1), such as a dropout rate."""
        value = self.get(field, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            self.problems.append(f"`{field}` must be a number in [0, 1). Received: {field}={value!r}")
            return default
        return float(value)

    def positive_float(self, field: str, default: float) -> float:
        value = self.get(field, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            self.problems.append(f"`{field}` must be a positive number. Received: {field}={value!r}")
            return default
        return float(value)

    def supported(self, field: str, default, values: Collection, why: str):
        """The field's value if kiln supports it; otherwise record why not and what is."""
        value = self.config.get(field, default)
        try:
            known = value in values
        except TypeError:  # an unhashable value (a list, a dict) is never one of them
            known = False
        if not known:
            self.problems.append(f"`{field}`={value!r} is not supported: {why}. Supported: "
                                 f"{sorted(values, key=repr)}.")
            return default
        return value

    def problem(self, message: str) -> None:
        self.problems.append(message)

    def raise_problems(self) -> None:
        if self.problems:
            raise KilnValueError(f"{self.loader} cannot load {self.folder!r}: its config.json asks for what kiln's "
                                 f"{self.family} cannot express exactly:\n  - " + "\n  - ".join(self.problems))


# kiln name -> (Hugging Face names it is made from, how; None: the one tensor as it is)
Plan = dict[str, tuple[tuple[str, ...], Callable | None]]


def fit_state(model: torch.nn.Module, plan: Plan, weights: dict, loader: str, folder, family: str,
              optional: Collection[str] = ()) -> list[str]:
    """Fill ``model`` from ``weights`` by ``plan``; one error lists every tensor that does not fit.

    Every tensor of ``weights`` must be used by the plan (the caller removes the ones it ignores
    on purpose), and every parameter of ``model`` must be filled, except those in ``optional``
    (e.g. a pooler's weight and bias), which come all together or keep their initial values.
    Returns the optional names that were not filled.

    Raises:
        KilnValueError: naming each missing tensor (Hugging Face name and kiln name), each
            unexpected tensor, and each shape that differs from what config.json implies.
    """
    expected = model.state_dict()
    state, missing, misshapen, used = {}, [], [], set()
    for kiln_name, (hf_names, combine) in plan.items():
        absent = [n for n in hf_names if n not in weights]
        if absent:
            if kiln_name not in optional:
                missing.append(f"{absent[0]!r} (kiln `{kiln_name}`)")
            continue
        used.update(hf_names)
        tensor = combine(*(weights[n] for n in hf_names)) if combine else weights[hf_names[0]]
        want = tuple(expected[kiln_name].shape)
        if tuple(tensor.shape) != want:
            shapes = " + ".join(str(tuple(weights[n].shape)) for n in hf_names)
            if combine is not None:
                shapes += f" ({combine.__doc__ or 'combined'}: {tuple(tensor.shape)})"
            misshapen.append(f"{_names(hf_names)} has shape {shapes}, but the config implies {want} "
                             f"for kiln `{kiln_name}`")
            continue
        state[kiln_name] = tensor
    planned_optional = [k for k in optional if k in plan]
    absent_optional = [k for k in planned_optional if any(n not in weights for n in plan[k][0])]
    if absent_optional and len(absent_optional) < len(planned_optional):  # whole or not at all
        missing += [f"{plan[k][0][0]!r} (kiln `{k}`)" for k in absent_optional]
    unplanned = [k for k in expected if k not in plan and k not in optional]
    if unplanned:  # a bug in a loader's table, not in the user's folder
        raise RuntimeError(f"{loader}: no source for kiln parameters {unplanned}")
    unexpected = sorted(set(weights) - used)
    if missing or unexpected or misshapen:
        lines = ([f"missing tensors: {_names(missing, quote=False)}"] if missing else []) + \
                ([f"unexpected tensors: {_names(unexpected)}"] if unexpected else []) + \
                [f"shape mismatch: {m}" for m in misshapen[:_LISTED]] + \
                ([f"... and {len(misshapen) - _LISTED} more shape mismatches"] if len(misshapen) > _LISTED else [])
        hint = ("\n  (Sizes come from config.json: check that it belongs to these weights.)" if misshapen else "")
        raise KilnValueError(f"{loader} cannot load {str(folder)!r}: its weights do not fit the {family} its "
                             f"config.json describes:\n  - " + "\n  - ".join(lines) + hint)
    model.load_state_dict(state, strict=False)
    return [k for k in optional if k not in state]


def warn_ignored(loader: str, names, why: str) -> None:
    """Say which checkpoint tensors a loader leaves out on purpose, and why."""
    names = sorted(names)
    if names:
        warnings.warn(f"{loader}: ignored {len(names)} tensor(s) of the checkpoint ({_names(names)}): {why}",
                      stacklevel=3)


def transpose(t: torch.Tensor) -> torch.Tensor:
    """transposed from Conv1D's (in, out)"""
    return t.t()


def concat(*tensors: torch.Tensor) -> torch.Tensor:
    """concatenated along dim 0"""
    return torch.cat(tensors, dim=0)
