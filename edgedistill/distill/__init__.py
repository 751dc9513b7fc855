"""Distillation: train a small student on a large teacher's soft targets.

Importing this package imports TensorFlow (with tf_keras as ``tf.keras``).
"""

from edgedistill.distill.distiller import Distiller
from edgedistill.distill.losses import DistillationLoss, LogitsDistillation, get, serialize
from edgedistill.distill.run import DistillResult, distill

__all__ = [
    "DistillResult",
    "DistillationLoss",
    "Distiller",
    "LogitsDistillation",
    "distill",
    "get",
    "serialize",
]
