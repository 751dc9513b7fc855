"""The one place that imports TensorFlow, so the Keras flavour is chosen once.

tfmot works only with Keras 2, so students are tf_keras models. Setting
TF_USE_LEGACY_KERAS before TensorFlow is first imported makes ``tf.keras``
(and with it the TFLite converter's ``from_keras_model``) resolve to tf_keras
too. A user who already set the variable keeps their value.
"""

from __future__ import annotations

import os
import sys

from edgedistill._native_log import native_stderr_discarded


def tensorflow():
    """Imports and returns the ``tensorflow`` module with tf_keras as ``tf.keras``."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_stderr_discarded():
        import tensorflow as tf

        # Device discovery logs a CUDA error on machines without a GPU; do it here, quietly.
        tf.config.list_physical_devices()
    return tf


def keras():
    """Imports and returns ``tf_keras`` (Keras 2), the Keras of every student."""
    tensorflow()
    import tf_keras

    return tf_keras


def tfmot():
    """Imports and returns ``tensorflow_model_optimization``."""
    tensorflow()
    import tensorflow_model_optimization

    return tensorflow_model_optimization
