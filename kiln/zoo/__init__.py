"""The model zoo: one self-contained file per architecture, each a plain ``nn.Module``.

Builders are listed here by name (an explicit table, not a registry filled at import time),
and imported only when asked for, so ``import kiln`` stays light.

    kiln.zoo.get("resnet18")(num_classes=10)
    kiln.zoo.resnet18(num_classes=10)
    kiln.zoo.load_hf_bert("checkpoints/bert-sst2")   # a Hugging Face folder (also load_hf_gpt2, load_hf_vit)
"""

from __future__ import annotations

import importlib
import sys
import types

from kiln.errors import unknown_name_error

__all__ = ["get", "names", "BUILDERS", "LOADERS"]

# name -> "module:function"; each module is kiln/zoo/<module>.py
BUILDERS: dict[str, str] = {
    "mlp": "mlp:mlp",
    "vgg11": "vgg:vgg11", "vgg13": "vgg:vgg13", "vgg16": "vgg:vgg16", "vgg19": "vgg:vgg19",
    "resnet18": "resnet:resnet18", "resnet34": "resnet:resnet34", "resnet50": "resnet:resnet50",
    "vit": "vit:vit", "vit_tiny": "vit:vit_tiny",
    "unet": "unet:unet",
    "bert": "bert:bert", "bert_tiny": "bert:bert_tiny",
    "gpt": "gpt:gpt", "gpt_tiny": "gpt:gpt_tiny",
    "wavenet": "wavenet:wavenet",
    "audio_transformer": "audio_transformer:audio_transformer",
    "fusion": "fusion:fusion",
}


def names() -> list[str]:
    return sorted(BUILDERS)


def _import(module_name: str):
    """Import kiln/zoo/<module_name>.py and bind its builders as this package's attributes.

    The builders are written into this module's namespace directly (``_ZooPackage`` refuses the
    module the import system would set under the same name)."""
    module = importlib.import_module(f"kiln.zoo.{module_name}")
    for builder, target in BUILDERS.items():
        target_module, function = target.split(":")
        if target_module == module_name:
            globals()[builder] = getattr(module, function)
    return module


def get(name: str):
    """The builder function called ``name`` (e.g. ``get("resnet18")(num_classes=10)``)."""
    if name not in BUILDERS:
        raise unknown_name_error("zoo model", name, BUILDERS)
    module_name, function = BUILDERS[name].split(":")
    return getattr(_import(module_name), function)


# Hugging Face checkpoint loaders, reachable as kiln.zoo.load_hf_bert(folder) etc.
LOADERS: dict[str, str] = {"load_hf_bert": "bert", "load_hf_gpt2": "gpt", "load_hf_vit": "vit"}


def __getattr__(name: str):
    if name in BUILDERS:
        return get(name)
    if name in LOADERS:
        return getattr(importlib.import_module(f"kiln.zoo.{LOADERS[name]}"), name)
    raise AttributeError(f"module 'kiln.zoo' has no attribute {name!r}")


class _ZooPackage(types.ModuleType):
    """``kiln.zoo`` itself, keeping ``kiln.zoo.vit`` the *builder*.

    Loading a submodule makes the import system set the package attribute of that name to the
    module; ``from kiln.zoo.vit import load_hf_vit`` would then shadow the ``vit`` builder, and
    ``kiln.zoo.vit(...)`` would fail with "'module' object is not callable" depending on what
    was imported before. Such module assignments are dropped here (the submodule stays in
    ``sys.modules`` and ``from kiln.zoo.vit import ...`` works as usual).
    """

    def __setattr__(self, name: str, value) -> None:
        if name in BUILDERS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _ZooPackage
