"""Structured (channel) pruning: a genuinely smaller dense student.

Unstructured zeros leave a .tflite as large and as slow as before on a
microcontroller (tfmot issue 722). :func:`prune_channels` instead removes
whole filters: it ranks each Conv and hidden Dense layer's output channels by
the L1 norm of their weights (Li et al. 2017, "Pruning Filters for Efficient
ConvNets"), keeps the strongest, and rebuilds the model with fewer channels,
slicing everything the removed channels fed: BatchNormalization statistics,
depthwise filters, the next layer's inputs, and the rows a Flatten maps them
to. Fewer channels mean fewer MACs, fewer bytes and a smaller arena;
distilling the result recovers the accuracy.

The model must be a chain (each layer fed by the one before); branches such
as residual adds are refused with the layer named.

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
                 _layers.GlobalMaxPooling2D, _layers.ZeroPadding2D)
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


def _chain(model) -> list:
    """The layers in order, checked to form a single chain."""
    layers = model.layers
    for previous, layer in zip(layers, layers[1:], strict=False):
        inbound = [node.inbound_layers for node in layer._inbound_nodes]
        sources = inbound[0] if inbound else []
        sources = sources if isinstance(sources, list) else [sources]
        if len(inbound) != 1 or len(sources) != 1 or sources[0] is not previous:
            raise EdgeDistillError(
                f"channel pruning: {model.name} is not a chain of layers at {layer.name!r} "
                f"({type(layer).__name__} fed by several layers or not by the one before); "
                "structured pruning handles sequential models only")
    return layers


def _keep(kernel: np.ndarray, fraction: float) -> np.ndarray:
    """Indices (sorted) of the output channels with the largest L1 norms."""
    norms = np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)
    count = max(1, int(round(kernel.shape[-1] * (1 - fraction))))
    return np.sort(np.argsort(-norms, kind="stable")[:count])


def prune_channels(model, fraction: float = 0.5,
                   layers: tuple[str, ...] | None = None) -> tuple[object, ChannelPruning]:
    """A copy of ``model`` with ``fraction`` of the channels of its hidden layers removed.

    Args:
        model: a trained tf_keras model whose layers form a chain.
        fraction: the share of each pruned layer's output channels to remove, in (0, 1).
        layers: the Conv/Dense layers to prune (default: all but the last,
            whose outputs are the classes).

    Returns:
        The smaller model (same layer names, fewer channels) and a
        :class:`ChannelPruning` report.

    Raises:
        EdgeDistillError: a fraction outside (0, 1), a model that is not a
            chain, or a layer this pruner does not know how to slice.
    """
    if not isinstance(fraction, int | float) or not 0 < fraction < 1:
        raise EdgeDistillError(f"channel pruning fraction: must lie in (0, 1), got "
                               f"{fraction!r:.40}")
    chain = _chain(model)
    producers = [layer for layer in chain if isinstance(layer, _PRODUCERS)]
    targets = set(layers) if layers is not None else {p.name for p in producers[:-1]}
    unknown = targets - {p.name for p in producers[:-1]}
    if unknown:
        raise EdgeDistillError(
            f"channel pruning layers: {sorted(unknown)[0]!r} is not a hidden Conv or Dense "
            f"layer of {model.name}; choose from {', '.join(p.name for p in producers[:-1])}")

    kept = None  # channels of the current tensor's last axis that survive; None: all
    weights, sizes, report = {}, {}, []
    for layer in chain:
        arrays = [np.asarray(w) for w in layer.get_weights()]
        if isinstance(layer, _PRODUCERS):
            kernel, rest = arrays[0], arrays[1:]
            if kept is not None:
                kernel = np.take(kernel, kept, axis=-2)
            kept = None
            if layer.name in targets:
                kept = _keep(kernel, fraction)
                kernel = np.take(kernel, kept, axis=-1)
                rest = [np.take(b, kept, axis=-1) for b in rest]
                sizes[layer.name] = len(kept)
                report.append({"layer": layer.name, "channels_before": int(arrays[0].shape[-1]),
                               "channels_after": len(kept), "kept": kept.tolist()})
            weights[layer.name] = [kernel, *rest]
        elif isinstance(layer, _layers.DepthwiseConv2D):
            if layer.depth_multiplier != 1:
                raise EdgeDistillError(f"channel pruning: {layer.name!r} has depth_multiplier "
                                       f"{layer.depth_multiplier}; only 1 is supported")
            weights[layer.name] = arrays if kept is None else [
                np.take(arrays[0], kept, axis=2), *(np.take(b, kept, axis=-1)
                                                    for b in arrays[1:])]
        elif isinstance(layer, _layers.BatchNormalization):
            weights[layer.name] = arrays if kept is None else [
                np.take(a, kept, axis=-1) for a in arrays]
        elif isinstance(layer, _layers.Flatten):
            if kept is not None:
                shape = layer.input_shape[1:]
                spatial, channels = int(np.prod(shape[:-1])), int(shape[-1])
                kept = (np.arange(spatial)[:, None] * channels + kept[None, :]).reshape(-1)
        elif not isinstance(layer, _PASS_THROUGH) and (layer.weights or kept is not None):
            raise EdgeDistillError(
                f"channel pruning: cannot carry removed channels through {layer.name!r} "
                f"({type(layer).__name__}); prune the layers before it only, or use "
                "Conv, Dense, DepthwiseConv2D, BatchNormalization, pooling and activations")

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
        fraction=float(fraction), criterion="l1-norm of each output channel's weights",
        layers=tuple(report), params_before=int(model.count_params()),
        params_after=int(smaller.count_params()))
