"""``name:key=value,...`` specs: named objects with settings, from a command line.

The CLI's ``--loss`` and ``--augment`` take them; :func:`parse` turns one into
the ``{"class_name": ..., "config": ...}`` form that the registries'
``get`` functions read.

Example:
    >>> parse("logits_distillation:temperature=2,loss=kl_divergence")
    {'class_name': 'logits_distillation', 'config': {'temperature': 2, 'loss': 'kl_divergence'}}
"""

from __future__ import annotations

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
