"""Weight clustering inside the distillation loop (tfmot ``cluster_weights``).

Each clustered kernel keeps only ``clusters`` distinct values (centroids that
training moves), so it compresses well and, with cluster-preserving QAT
afterwards, stays that way in int8. The verbs follow tfmot's
``cluster_weights`` / ``strip_clustering``.

Example:
    >>> clustering = Clustering(clusters=16)
    >>> wrapped = clustering.wrap(student, total_steps=4000)
    >>> wrapped.fit(...)
    >>> clustering.report(clustering.strip(wrapped))[0]["distinct_values"]
    16
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgedistill import specs
from edgedistill._tf import keras, tfmot
from edgedistill.compress.schemes import CompressionScheme, register
from edgedistill.errors import EdgeDistillError

_keras = keras()
_clustering = tfmot().clustering.keras
INITS = ("kmeans_plus_plus", "linear", "density_based", "random")
_CLUSTERED = (_keras.layers.Conv1D, _keras.layers.Conv2D, _keras.layers.DepthwiseConv2D,
              _keras.layers.Dense)


@register("cluster")
@dataclasses.dataclass(frozen=True)
class Clustering(CompressionScheme):
    """How the student's kernels are clustered while it is distilled.

    Attributes:
        clusters: distinct values each clustered kernel keeps (2 to 256).
        init: how the centroids start: ``kmeans_plus_plus`` (tfmot's
            default), ``linear``, ``density_based`` or ``random``.
        layers: cluster only these layers; by default every Conv and Dense
            layer whose kernel has more weights than ``clusters``.
    """

    clusters: int = 16
    init: str = "kmeans_plus_plus"
    layers: tuple[str, ...] | None = None

    def __post_init__(self):
        if isinstance(self.clusters, bool) or not isinstance(self.clusters, int) or not (
                2 <= self.clusters <= 256):
            raise EdgeDistillError(f"clustering clusters: a whole number from 2 to 256, got "
                                   f"{self.clusters!r:.40}")
        if self.init not in INITS:
            raise EdgeDistillError(f"clustering init: {self.init!r:.40} unknown; use one of "
                                   f"{', '.join(INITS)}")
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(self.layers))

    @classmethod
    def from_spec(cls, spec) -> Clustering:
        """A Clustering from itself, a cluster count, ``key=value,...`` text or a mapping.

        Example:
            >>> Clustering.from_spec("clusters=8,init=linear").clusters
            8
        """
        if isinstance(spec, Clustering):
            return spec
        if isinstance(spec, int) and not isinstance(spec, bool):
            return cls(clusters=spec)
        if isinstance(spec, str):
            spec = ({"clusters": int(spec)} if spec.strip().isdigit()
                    else specs.parse(f"cluster:{spec}", "cluster")["config"])
        if not isinstance(spec, dict):
            raise EdgeDistillError(f"cluster: expected a cluster count or key=value settings, "
                                   f"got {spec!r:.60}")
        return specs.build(cls, spec, "cluster")

    def _targets(self, model) -> set[str]:
        if self.layers is None:
            return {layer.name for layer in model.layers if isinstance(layer, _CLUSTERED)
                    and int(np.prod(layer.kernel.shape)) > self.clusters}
        names = {layer.name: layer for layer in model.layers}
        for name in self.layers:
            if name not in names:
                raise EdgeDistillError(f"clustering layers: {model.name} has no layer "
                                       f"{name!r}; its layers: {', '.join(names)}")
            if not isinstance(names[name], _CLUSTERED):
                raise EdgeDistillError(
                    f"clustering layers: {name!r} is a {type(names[name]).__name__}; cluster "
                    f"{', '.join(kind.__name__ for kind in _CLUSTERED)} layers")
        return set(self.layers)

    def wrap(self, model, total_steps: int = 0):
        """A copy of ``model`` whose chosen layers are wrapped for clustering (weights kept)."""
        targets = self._targets(model)
        if not targets:
            raise EdgeDistillError(f"clustering: {model.name} has no Conv or Dense kernel with "
                                   f"more than {self.clusters} weights")
        fresh = _keras.models.clone_model(model)
        fresh.set_weights(model.get_weights())
        init = getattr(_clustering.CentroidInitialization, self.init.upper())

        def wrap(layer):
            if layer.name not in targets:
                return layer
            return _clustering.cluster_weights(layer, number_of_clusters=self.clusters,
                                               cluster_centroids_init=init)

        try:
            return _keras.models.clone_model(fresh, clone_function=wrap)
        except (ValueError, TypeError) as e:
            text = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise EdgeDistillError(f"clustering {model.name}: {text}") from None

    def fit_options(self, epochs: int) -> dict:
        """Clustering needs no callback, and every epoch is clustered."""
        return {}

    def strip(self, model):
        """``model`` without clustering wrappers (tfmot ``strip_clustering``)."""
        from tensorflow_model_optimization.python.core.clustering.keras import (
            cluster_wrapper,
        )

        wrapped = any(isinstance(layer, cluster_wrapper.ClusterWeights)
                      for layer in model.layers)
        return _clustering.strip_clustering(model) if wrapped else model

    def report(self, model) -> tuple[dict, ...]:
        """The distinct values of each Conv and Dense kernel of a stripped model."""
        return tuple(
            {"layer": layer.name, "weights": int(np.prod(layer.kernel.shape)),
             "distinct_values": int(np.unique(np.asarray(layer.kernel)).size)}
            for layer in model.layers if isinstance(layer, _CLUSTERED))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
