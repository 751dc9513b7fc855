"""``name:key=value,...`` specs: named objects with settings, from a command line.

The CLI's ``--loss`` and ``--augment`` take them; :func:`parse` turns one into
the ``{"class_name": ..., "config": ...}`` form that the registries'
``get`` functions read.

Example:
    >>> parse("logits_distillation:temperature=2,loss=kl_divergence", "loss")
    {'class_name': 'logits_distillation', 'config': {'temperature': 2, 'loss': 'kl_divergence'}}
"""

from __future__ import annotations

import dataclasses
import re

from edgedistill.errors import EdgeDistillError

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_WORDS = {"true": True, "false": False, "none": None, "null": None}


def parse(spec: str, what: str) -> dict:
    """Parses ``name`` or ``name:key=value,key=value``; ``what`` names the option in errors."""
    name, _, settings = spec.strip().partition(":")
    if not _NAME.fullmatch(name):
        raise EdgeDistillError(
            f"{what}: {spec!r:.80} does not start with a name (name:key=value,...)")
    config = {}
    for item in filter(None, (part.strip() for part in settings.split(","))):
        key, equals, value = item.partition("=")
        key = key.strip()
        if not equals or not _NAME.fullmatch(key):
            raise EdgeDistillError(f"{what}: {item!r:.80} in {name} is not key=value")
        config[key] = _value(value.strip())
    return {"class_name": name, "config": config}


def _value(text: str):
    if text.lower() in _WORDS:
        return _WORDS[text.lower()]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text



def build(cls, settings: dict, what: str):
    """``cls(**settings)`` for a dataclass, an unknown setting named in one line.

    Example:
        >>> @dataclasses.dataclass
        ... class Prune:
        ...     sparsity: float = 0.5
        >>> build(Prune, {"sparsity": 0.8}, "prune")
        Prune(sparsity=0.8)
    """
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise EdgeDistillError(f"{what}: unknown setting {unknown[0]!r:.40}; known: "
                               f"{', '.join(sorted(known))}")
    return cls(**settings)

class Registry:
    """Classes a user selects by name: distillation losses, augmentations, compression schemes.

    A class registers under a snake_case name (and its class name); :meth:`get`
    builds one from an instance, a name, a ``name:key=value`` spec or a
    ``{"class_name", "config"}`` dict, and :meth:`serialize` writes that
    dict back. Registered classes provide ``from_config`` and ``get_config``.

    Example:
        >>> class Scheme:
        ...     pass
        >>> schemes = Registry("compression scheme", Scheme, option="compress")
        >>> @schemes.register("prune")
        ... class Prune(Scheme):
        ...     def __init__(self, sparsity=0.5): self.sparsity = sparsity
        ...     @classmethod
        ...     def from_config(cls, config): return cls(**config)
        ...     def get_config(self): return {"sparsity": self.sparsity}
        >>> schemes.get("prune:sparsity=0.75").sparsity
        0.75
    """

    def __init__(self, what: str, base: type, option: str):
        self.what = what
        self.base = base
        self.option = option
        self._classes: dict[str, type] = {}

    def register(self, name: str):
        """Class decorator: makes the class known to :meth:`get` by ``name`` and class name."""

        def decorate(cls):
            cls.registered_name = name
            self._classes[name] = cls
            self._classes[cls.__name__] = cls
            return cls

        return decorate

    def names(self) -> list[str]:
        """The registered snake_case names."""
        return sorted(name for name, cls in self._classes.items()
                      if name == cls.registered_name)

    def get(self, identifier):
        """The object ``identifier`` names; an instance of the base class is returned as it is.

        Raises:
            EdgeDistillError: an unknown name, or a spec or config the class does not take.
        """
        if isinstance(identifier, self.base):
            return identifier
        if isinstance(identifier, str):
            identifier = parse(identifier, self.option)
        if isinstance(identifier, dict) and "class_name" in identifier:
            cls = self._classes.get(identifier["class_name"])
            if cls is None:
                raise EdgeDistillError(f"{identifier['class_name']}: unknown {self.what}; "
                                       f"known: {', '.join(self.names())}")
            config = identifier.get("config") or {}
            if not isinstance(config, dict):
                raise EdgeDistillError(f"{identifier['class_name']}: config must be a mapping")
            return cls.from_config(config)
        article = "an" if self.what[0] in "aeiou" else "a"
        raise EdgeDistillError(f"cannot interpret {identifier!r:.80} as {article} {self.what}")

    def serialize(self, instance) -> dict:
        """``{"class_name": ..., "config": ...}``, the form :meth:`get` reads back."""
        return {"class_name": type(instance).__name__, "config": instance.get_config()}
