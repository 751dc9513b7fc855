"""The plug-in point of compression inside distillation.

A :class:`CompressionScheme` says how the student is wrapped before it is
trained, what its fit needs, how it is stripped for export and what to
report. Pruning and clustering are schemes; a new one registers itself and
``distill`` runs it unchanged.

Example:
    >>> get("prune:sparsity=0.75").sparsity
    0.75
    >>> serialize(get("cluster:clusters=8"))["class_name"]
    'Clustering'
"""

from __future__ import annotations

from edgedistill import specs


class CompressionScheme:
    """Base class of compression applied while distilling.

    Subclasses implement :meth:`wrap`, and :meth:`strip` and :meth:`report`
    when their wrappers must go before export.
    """

    registered_name = ""

    def wrap(self, model, total_steps: int):
        """A copy of ``model`` prepared for compression-aware training (weights kept)."""
        raise NotImplementedError

    def fit_options(self, epochs: int) -> dict:
        """Keyword arguments for the fit: callbacks, the first epoch to keep."""
        return {}

    def strip(self, model):
        """``model`` ready for export, its training wrappers removed."""
        return model

    def report(self, model) -> tuple[dict, ...]:
        """Per-layer figures of a stripped model (sparsity, distinct values, ...)."""
        return ()

    @classmethod
    def from_config(cls, config: dict):
        return cls.from_spec(config)

    def get_config(self) -> dict:
        return self.to_dict()


SCHEMES = specs.Registry("compression scheme", CompressionScheme, option="compress")
register = SCHEMES.register


def get(identifier) -> CompressionScheme:
    """A scheme from an instance, a ``name:key=value,...`` spec or a dict."""
    from edgedistill.compress import clustering, pruning  # noqa: F401 - they register

    return SCHEMES.get(identifier)


def serialize(scheme: CompressionScheme) -> dict:
    return SCHEMES.serialize(scheme)
