"""Structured (channel) pruning: a genuinely smaller dense student.

Unstructured zeros leave a .tflite as large and as slow as before on a
microcontroller (tfmot issue 722). :func:`prune_channels` instead removes
whole filters: it ranks each Conv and hidden Dense layer's output channels by
the L1 norm of their weights (Li et al. 2017, "Pruning Filters for Efficient
ConvNets"), keeps the strongest, and rebuilds the model with fewer channels,
slicing everything the removed channels fed: BatchNormalization statistics,
depthwise filters, the next layers' inputs, and the rows a Flatten maps them
to. Fewer channels mean fewer MACs, fewer bytes and a smaller arena;
distilling the result recovers the accuracy.

Residual connections work: the layers whose outputs meet at an ``Add`` (or
another element-wise merge) share one set of channels, ranked by the sum of
their L1 norms, so every branch keeps the same ones. A set of channels that
reaches the model's input or output, or a layer that mixes channels in ways
this pruner cannot slice (``Concatenate``, ``Reshape``), is named in the
error.

Example:
    >>> smaller, report = prune_channels(trained_student, fraction=0.5)
    >>> report.params_before, report.params_after
    (9098, 2586)
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgedistill._tf import keras
from edgedistill.errors import EdgeDistillError

_keras = keras()
_layers = _keras.layers
# Layers a channel passes through unchanged (element-wise or per channel).
_PASS_THROUGH = (_layers.InputLayer, _layers.ReLU, _layers.Activation, _layers.Dropout,
                 _layers.MaxPooling1D, _layers.MaxPooling2D, _layers.AveragePooling1D,
                 _layers.AveragePooling2D, _layers.GlobalAveragePooling1D,
                 _layers.GlobalAveragePooling2D, _layers.GlobalMaxPooling1D,
                 _layers.GlobalMaxPooling2D, _layers.ZeroPadding2D, _layers.LeakyReLU,
                 _layers.PReLU)
_MERGES = (_layers.Add, _layers.Subtract, _layers.Multiply, _layers.Average,
           _layers.Maximum, _layers.Minimum)
_PRODUCERS = (_layers.Conv1D, _layers.Conv2D, _layers.Dense)


@dataclasses.dataclass(frozen=True)
class ChannelPruning:
    """What :func:`prune_channels` removed.

    Attributes:
        fraction: the fraction of each pruned layer's channels removed.
        criterion: how channels were ranked.
        layers: per pruned layer, ``{"layer", "channels_before", "channels_after",
            "kept"}`` (the indices of the channels kept).
        params_before, params_after: the model's parameter counts.
    """

    fraction: float
    criterion: str
    layers: tuple[dict, ...]
    params_before: int
    params_after: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _sources(layer) -> list:
    """The layers feeding ``layer`` (one call of it: shared layers are refused)."""
    nodes = layer._inbound_nodes
    if len(nodes) > 1:
        raise EdgeDistillError(f"channel pruning: {layer.name!r} is called {len(nodes)} times; "
                               "shared layers are not supported")
    sources = nodes[0].inbound_layers if nodes else []
    return sources if isinstance(sources, list) else [sources]


class _ChannelSets:
    """Union-find over output channels: layers joined by a merge share one set."""

    def __init__(self):
        self.parent = {}

    def find(self, name: str) -> str:
        self.parent.setdefault(name, name)
        while self.parent[name] != name:
            self.parent[name] = self.parent[self.parent[name]]
            name = self.parent[name]
        return name

    def join(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def _channel_origins(model, sets: _ChannelSets) -> dict[str, str]:
    """For each layer, the channel set of its output's last axis (a producer's name, or
    ``"<input>"``); merges join the sets of their inputs."""
    origin = {}
    for layer in model.layers:
        sources = _sources(layer)
        if isinstance(layer, _PRODUCERS):
            origin[layer.name] = layer.name
        elif not sources:
            origin[layer.name] = "<input>"
        elif isinstance(layer, _MERGES):
            for source in sources[1:]:
                sets.join(origin[source.name], origin[sources[0].name])
            origin[layer.name] = origin[sources[0].name]
        elif len(sources) > 1:
            origin[layer.name] = f"<{layer.name}>"  # a Concatenate: channels not sliced
        elif isinstance(layer, _layers.Flatten):
            origin[layer.name] = f"<{layer.name}>"
        else:
            origin[layer.name] = origin[sources[0].name]
    return origin


def _same(a, b) -> bool:
    return (a is None and b is None) or (a is not None and b is not None
                                         and np.array_equal(a, b))


def _norms(kernel: np.ndarray) -> np.ndarray:
    """The L1 norm of each output channel (last axis) of a kernel."""
    return np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)


def _keep(norms: np.ndarray, fraction: float) -> np.ndarray:
    """Indices (sorted) of the channels with the largest norms."""
    count = max(1, int(round(len(norms) * (1 - fraction))))
    return np.sort(np.argsort(-norms, kind="stable")[:count])


def prune_channels(model, fraction: float = 0.5,
                   layers: tuple[str, ...] | None = None) -> tuple[object, ChannelPruning]:
    """A copy of ``model`` with ``fraction`` of the channels of its hidden layers removed.

    Args:
        model: a trained tf_keras model (a chain, or a graph with residual adds).
        fraction: the share of each pruned layer's output channels to remove, in (0, 1).
        layers: the Conv/Dense layers to prune (default: all but those whose
            outputs reach the model's output). Layers joined by a residual
            add are pruned together or not at all.

    Returns:
        The smaller model (same layer names, fewer channels) and a
        :class:`ChannelPruning` report.

    Raises:
        EdgeDistillError: a fraction outside (0, 1), or a layer this pruner
            does not know how to slice (named).
    """
    if not isinstance(fraction, int | float) or not 0 < fraction < 1:
        raise EdgeDistillError(f"channel pruning fraction: must lie in (0, 1), got "
                               f"{fraction!r:.40}")
    sets = _ChannelSets()
    origin = _channel_origins(model, sets)
    producers = [layer for layer in model.layers if isinstance(layer, _PRODUCERS)]
    # Channel sets that must stay whole: the model's input and outputs.
    fixed = {sets.find("<input>")} | {sets.find(origin[layer.name]) for layer in
                                      model._output_layers}
    members: dict[str, list] = {}
    for producer in producers:
        members.setdefault(sets.find(producer.name), []).append(producer)
    hidden = [p.name for p in producers if sets.find(p.name) not in fixed]
    targets = set(layers) if layers is not None else set(hidden)
    unknown = targets - set(hidden)
    if unknown:
        raise EdgeDistillError(
            f"channel pruning layers: {sorted(unknown)[0]!r} is not a hidden Conv or Dense "
            f"layer of {model.name}; choose from {', '.join(hidden)}")
    kept_sets = {}
    for root, group in members.items():
        names = {p.name for p in group}
        if root in fixed or not names & targets:
            continue
        if not names <= targets:
            raise EdgeDistillError(
                f"channel pruning layers: {', '.join(sorted(names))} add up in a residual "
                f"connection; prune all of them or none ({', '.join(sorted(names - targets))} "
                "missing)")
        kept_sets[root] = _keep(sum(_norms(p.get_weights()[0]) for p in group), fraction)

    # The kept channels of each layer's output (its last axis), or None for all.
    kept: dict[str, np.ndarray | None] = {}
    weights, sizes, report = {}, {}, []
    for layer in model.layers:
        sources = _sources(layer)
        arrays = [np.asarray(w) for w in layer.get_weights()]
        incoming = kept[sources[0].name] if sources else None
        out = incoming
        if isinstance(layer, _PRODUCERS):
            kernel, rest = arrays[0], arrays[1:]
            if incoming is not None:
                kernel = np.take(kernel, incoming, axis=-2)
            out = kept_sets.get(sets.find(layer.name))
            if out is not None:
                kernel = np.take(kernel, out, axis=-1)
                rest = [np.take(b, out, axis=-1) for b in rest]
                sizes[layer.name] = len(out)
                report.append({"layer": layer.name, "channels_before": int(arrays[0].shape[-1]),
                               "channels_after": len(out), "kept": out.tolist()})
            weights[layer.name] = [kernel, *rest]
        elif isinstance(layer, _layers.DepthwiseConv2D):
            if layer.depth_multiplier != 1 and incoming is not None:
                raise EdgeDistillError(f"channel pruning: {layer.name!r} has depth_multiplier "
                                       f"{layer.depth_multiplier}; only 1 is supported")
            weights[layer.name] = arrays if incoming is None else [
                np.take(arrays[0], incoming, axis=2), *(np.take(b, incoming, axis=-1)
                                                        for b in arrays[1:])]
        elif isinstance(layer, _layers.BatchNormalization | _layers.PReLU):
            weights[layer.name] = arrays if incoming is None else [
                np.take(a, incoming, axis=-1) for a in arrays]
        elif isinstance(layer, _layers.Flatten):
            if incoming is not None:
                shape = layer.input_shape[1:]
                spatial, channels = int(np.prod(shape[:-1])), int(shape[-1])
                out = (np.arange(spatial)[:, None] * channels + incoming[None, :]).reshape(-1)
        elif isinstance(layer, _MERGES) and all(
                _same(kept[s.name], incoming) for s in sources):
            pass
        elif not isinstance(layer, _PASS_THROUGH) and (
                layer.weights or any(kept[s.name] is not None for s in sources)):
            raise EdgeDistillError(
                f"channel pruning: cannot carry removed channels through {layer.name!r} "
                f"({type(layer).__name__}); prune the layers before it only, or use "
                "Conv, Dense, DepthwiseConv2D, BatchNormalization, pooling, activations "
                "and residual adds")
        kept[layer.name] = out

    def rebuilt(layer):
        config = layer.get_config()
        if layer.name in sizes:
            config["filters" if "filters" in config else "units"] = sizes[layer.name]
        return type(layer).from_config(config)

    smaller = _keras.models.clone_model(model, clone_function=rebuilt)
    for layer in smaller.layers:
        if layer.name in weights:
            layer.set_weights(weights[layer.name])
    return smaller, ChannelPruning(
        fraction=float(fraction), criterion="l1-norm of each output channel's weights "
        "(summed over the layers a residual add joins)",
        layers=tuple(report), params_before=int(model.count_params()),
        params_after=int(smaller.count_params()))
