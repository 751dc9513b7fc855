"""Loading Keras models given as a file or a zoo name, with clear errors."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from edgedistill import zoo
from edgedistill._tf import keras
from edgedistill.errors import EdgeDistillError

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


def is_zoo_name(spec: str | os.PathLike) -> bool:
    return str(spec) in zoo.ZOO


def load_keras_model(path: str | os.PathLike):
    """Loads a tf_keras model file (.keras or .h5), QAT-wrapped models included.

    Raises:
        EdgeDistillError: the file is missing or holds no tf_keras model.
    """
    path = Path(path)
    if not path.is_file():
        raise EdgeDistillError(
            f"{path}: no such model file; give a .keras/.h5 file or a zoo name "
            f"({', '.join(zoo.ZOO)})"
        )
    if path.suffix.lower() not in KERAS_SUFFIXES:
        raise EdgeDistillError(f"{path}: not a Keras model file; expected .keras or .h5")
    from edgedistill.compress.qat import quantize_scope

    k = keras()
    try:
        with quantize_scope():
            model = k.models.load_model(path, compile=False)
    except Exception as e:  # Keras raises many types for a corrupt or foreign file.
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise EdgeDistillError(
            f"{path}: cannot load as a tf_keras model ({reason}); save it with tf_keras "
            "(Keras 2) as .keras or .h5"
        ) from None
    if not isinstance(model, k.Model):
        raise EdgeDistillError(f"{path}: holds a {type(model).__name__}, not a tf_keras Model")
    for weight in model.weights:
        if not np.isfinite(weight.numpy()).all():
            raise EdgeDistillError(f"{path}: weight {weight.name!r} holds NaN or infinity; the "
                                   "file is damaged or the model diverged in training")
    return model


def output_units(model, name: str) -> int:
    """Number of classes a single-output classifier predicts."""
    shape = model.output_shape
    if isinstance(shape, list) or len(shape) != 2:
        raise EdgeDistillError(
            f"{name}: output shape {shape} is not (batch, classes); edgedistill distills "
            "single-output classifiers"
        )
    return int(shape[-1])


def outputs_probabilities(model) -> bool:
    """True when the model ends in a softmax, so its outputs are probabilities.

    A tfmot QAT wrapper is looked through: its activation wraps the layer's own.
    """
    last = model.layers[-1]
    last = getattr(last, "layer", last)
    activation = getattr(last, "activation", None)
    activation = getattr(activation, "activation", activation)
    return type(last).__name__ == "Softmax" or getattr(activation, "__name__", "") == "softmax"


def save_keras_model(model, path: str | os.PathLike) -> None:
    """Saves ``model`` as HDF5, the format in which QAT-wrapped models reload."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*HDF5 file.*legacy", category=UserWarning)
        model.save(path)
