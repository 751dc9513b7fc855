"""Quantization-aware training inside the distillation loop (tfmot).

``quantize_student`` wraps a float student in tfmot's fake-quantization so
the distiller trains the weights the int8 converter will see. The TFLite
converter reads the learned ranges straight from the wrapped model.

tfmot's default 8-bit scheme has no entry for Conv1D;
:class:`Conv1DQuantizeConfig` supplies one, so 1-D convolutional students
(audio, sensor data) train quantization-aware too.

Example:
    >>> qat_student = quantize_student(student)
    >>> Distiller(teacher=teacher, student=qat_student).compile(...)
"""

from __future__ import annotations

import numpy as np

from edgedistill._tf import keras, tfmot
from edgedistill.errors import EdgeDistillError

_keras = keras()
_quantization = tfmot().quantization.keras
_QAT_LAYERS = ("QuantizeLayer", "QuantizeWrapper", "QuantizeWrapperV2")
# A kernel this much zero was pruned: QAT must keep its zeros.
SPARSE_FRACTION = 0.1
# A kernel larger than this with at most this many distinct values was clustered
# (trained weights are practically all distinct): QAT must keep its clusters.
CLUSTERED_VALUES = 256
# The cluster-preserving quantizer's own variables, which a plain QAT model lacks.
_CLUSTER_VARIABLES = ("cluster_centroids_tf", "ori_weights_vars_tf", "pulling_indices_tf")


def _default_8bit_config():
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry,
    )

    return default_8bit_quantize_registry.Default8BitQuantizeConfig


class Conv1DQuantizeConfig(_default_8bit_config()):
    """tfmot's 8-bit scheme for Conv1D: weights per tensor, activations as for Conv2D.

    Weights are quantized per tensor, not per output channel as tfmot does for
    Conv2D: tfmot's per-channel quantizer handles rank-2 and rank-4 kernels
    only, and a Conv1D kernel viewed as rank 4 fails in the TFLite converter
    ("'tfl.transpose' op has mismatched quantized axes"). The converter turns
    the layer into EXPAND_DIMS, CONV_2D and RESHAPE, all int8.
    """

    def __init__(self):
        super().__init__(["kernel"], ["activation"], False)
        self.weight_quantizer = _quantization.quantizers.LastValueQuantizer(
            num_bits=8, per_axis=False, symmetric=True, narrow_range=True)

    def get_config(self) -> dict:
        return {}


CUSTOM_OBJECTS = {"Conv1DQuantizeConfig": Conv1DQuantizeConfig}


def quantize_scope():
    """tfmot's ``quantize_scope`` with this module's QuantizeConfigs: to load QAT models."""
    return _quantization.quantize_scope(CUSTOM_OBJECTS)


def _annotate_conv1d(layer):
    if type(layer) is _keras.layers.Conv1D:
        return _quantization.quantize_annotate_layer(layer, Conv1DQuantizeConfig())
    return layer


def _kernels(model):
    kinds = (_keras.layers.Conv1D, _keras.layers.Conv2D, _keras.layers.DepthwiseConv2D,
             _keras.layers.Dense)
    return [np.asarray(layer.kernel) for layer in model.layers if isinstance(layer, kinds)]


def is_sparse(model) -> bool:
    """True when a Conv or Dense kernel of ``model`` is at least ``SPARSE_FRACTION`` zeros.

    Trained dense weights are practically never exactly zero; a pruned
    model's are, by the fraction it was pruned to.
    """
    return any(np.mean(kernel == 0) >= SPARSE_FRACTION for kernel in _kernels(model))


def is_clustered(model) -> bool:
    """True when a Conv or Dense kernel of more than ``CLUSTERED_VALUES`` weights holds at
    most that many distinct values: a clustered model's kernels do."""
    return any(kernel.size > CLUSTERED_VALUES and len(np.unique(kernel)) <= CLUSTERED_VALUES
               for kernel in _kernels(model))


def qat_scheme(model) -> str:
    """The QAT scheme :func:`quantize_student` picks for ``model`` by default:
    ``"default"``, ``"prune-preserving"``, ``"cluster-preserving"`` or
    ``"prune-and-cluster-preserving"``."""
    if is_quantize_wrapped(model):
        return "default"
    sparse, clustered = is_sparse(model), is_clustered(model)
    if clustered:
        return "prune-and-cluster-preserving" if sparse else "cluster-preserving"
    return "prune-preserving" if sparse else "default"


def quantize_student(model, preserve_sparsity: bool | None = None,
                     preserve_clusters: bool | None = None):
    """Returns a QAT copy of ``model`` (tfmot annotate and apply; weights kept).

    A model that already carries QAT wrappers is returned as it is.

    Args:
        preserve_sparsity: keep the zeros of a pruned model through training
            (tfmot's ``Default8BitPrunePreserveQuantizeScheme``, PQAT); by
            default, when the model :func:`is_sparse`.
        preserve_clusters: keep each kernel's clusters through training
            (tfmot's ``Default8BitClusterPreserveQuantizeScheme``, CQAT, or
            PCQAT with ``preserve_sparsity``); by default, when the model
            :func:`is_clustered`. Save such a model through :func:`plain_quantized`.

    Raises:
        EdgeDistillError: a layer tfmot cannot quantize, named in the message.
    """
    if is_quantize_wrapped(model):
        return model
    if preserve_sparsity is None:
        preserve_sparsity = is_sparse(model)
    if preserve_clusters is None:
        preserve_clusters = is_clustered(model)
    combine = tfmot().experimental.combine
    scheme = ({"scheme": combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity)}
              if preserve_clusters else
              {"scheme": combine.Default8BitPrunePreserveQuantizeScheme()}
              if preserve_sparsity else {})
    try:
        annotated = model
        if any(type(layer) is _keras.layers.Conv1D for layer in model.layers):
            annotated = _keras.models.clone_model(model, clone_function=_annotate_conv1d)
            annotated.set_weights(model.get_weights())
        with quantize_scope():
            return _quantization.quantize_apply(
                _quantization.quantize_annotate_model(annotated), **scheme)
    except (ValueError, RuntimeError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EdgeDistillError(
            f"student {model.name}: quantization-aware training cannot wrap it ({first}); "
            "use layers tfmot supports (Conv1D, Conv2D, DepthwiseConv2D, Dense, pooling, "
            "ReLU) or drop --qat"
        ) from None


def plain_quantized(model, float_model):
    """``model``, trained with cluster-preserving QAT, as a plain QAT model that saves and
    reloads.

    tfmot's cluster-preserving quantizer creates its variables only when it
    finds clustered kernels while the layer is built, so a saved (P)CQAT
    model does not reload (tf_keras rebuilds it from random kernels and
    expects fewer weights). During training the quantizer writes the
    clustered weights into each kernel, so a plain QAT model of
    ``float_model``'s architecture given the trained kernels and ranges
    computes exactly what ``model`` does, and converts to the same int8 model.
    """
    plain = quantize_student(float_model, preserve_sparsity=False, preserve_clusters=False)
    for layer, trained_layer in zip(plain.layers, model.layers, strict=True):
        trained = {_short_name(w, trained_layer): w for w in trained_layer.weights
                   if _short_name(w, trained_layer) not in _CLUSTER_VARIABLES}
        names = [_short_name(w, layer) for w in layer.weights]
        if sorted(names) != sorted(trained):
            raise EdgeDistillError(f"{layer.name}: the cluster-preserving QAT layer's weights "
                                   f"({', '.join(sorted(trained))}) do not match a plain QAT "
                                   f"layer's ({', '.join(sorted(names))})")
        layer.set_weights([trained[name].numpy() for name in names])
    return plain


def _short_name(weight, layer) -> str:
    """``kernel``, ``kernel_min``, ``max``: the weight's name without scopes, the layer's
    name (which differs between two copies) or the ``:0``."""
    return weight.name.split("/")[-1].split(":")[0].replace(layer.name, "").strip("_")


def is_quantize_wrapped(model) -> bool:
    """True when ``model`` carries tfmot's QAT wrappers."""
    return any(type(layer).__name__ in _QAT_LAYERS for layer in model.layers)
