"""Name and config lookup for a family of small objects that layers take by name or config.

Regularizers and constraints are both given to a layer as None, a name ("l2", "max_norm"), a
``{"class_name", "config"}`` dict, an instance or a plain callable, and saved as that dict. One
``ConfigObjects`` table per family keeps those rules (and their error messages) in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from kiln.errors import KilnTypeError, KilnValueError, unknown_name_error

__all__ = ["ConfigObjects"]


class ConfigObjects:
    """``get``/``serialize``/``deserialize`` for one family.

    Args:
        kind: the family's noun in messages ("regularizer").
        base: the family's base class (instances of it have ``get_config``/``from_config``).
        by_name: Keras's short names -> class or factory (``{"l2": L2}``).
        classes: every class saved files may name, by ``__name__``.
        example: a name to show in messages ("l2").
        listed_names: the names an unknown-name error lists (default: ``by_name``'s).
    """

    def __init__(self, kind: str, base: type, by_name: dict[str, Callable], classes: Iterable[type],
                 example: str, listed_names: Iterable[str] | None = None):
        self.kind, self.base, self.example = kind, base, example
        self.by_name = by_name
        self.by_class_name = {cls.__name__: cls for cls in classes}
        self.listed_names = tuple(by_name) if listed_names is None else tuple(listed_names)

    def serialize(self, obj) -> dict | None:
        """Return ``{"class_name", "config"}`` (None for None)."""
        if obj is None:
            return None
        if not isinstance(obj, self.base):
            raise KilnValueError(
                f"Cannot serialize {obj!r}: only kiln {self.kind}s have a config. Subclass "
                f"{self.base.__module__}.{self.base.__name__} (with get_config) to save a custom one."
            )
        return {"class_name": type(obj).__name__, "config": obj.get_config()}

    def deserialize(self, config, custom_objects: dict | None = None):
        """Inverse of ``serialize`` (also takes a name); ``custom_objects`` maps your own classes."""
        if config is None or isinstance(config, str):
            return self.get(config)
        if not isinstance(config, dict) or "class_name" not in config:
            raise KilnTypeError(
                f"Expected a dict {{'class_name': ..., 'config': {{...}}}} for a {self.kind}. Received: {config!r}"
            )
        classes = {**self.by_class_name, **(custom_objects or {})}
        name = config["class_name"]
        if name not in classes:
            raise unknown_name_error(self.kind, name, classes)
        return classes[name].from_config(config.get("config", {}))

    def get(self, identifier):
        """Resolve a layer argument: None, a name, a config dict, an instance, or a callable (as is)."""
        if identifier is None or isinstance(identifier, self.base):
            return identifier
        if isinstance(identifier, str):
            factory = self.by_name.get(identifier.lower()) or self.by_class_name.get(identifier)
            if factory is None:
                raise unknown_name_error(self.kind, identifier, self.listed_names)
            return factory()
        if isinstance(identifier, dict):
            return self.deserialize(identifier)
        if callable(identifier):
            return identifier
        raise KilnTypeError(
            f"Could not interpret {self.kind}: expected a name such as {self.example!r}, a config dict, a "
            f"{self.base.__name__} or a callable. Received: {identifier!r} of type {type(identifier).__name__}"
        )
