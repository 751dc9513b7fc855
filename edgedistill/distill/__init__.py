"""Distillation: train a small student on a large teacher's knowledge.

Importing this package imports TensorFlow (with tf_keras as ``tf.keras``).
"""

from edgedistill.distill.distiller import Distiller
from edgedistill.distill.labels import LabelAccuracy, hard_label_crossentropy
from edgedistill.distill.losses import (
    AttentionTransfer,
    DistillationLoss,
    FeatureDistillation,
    LogitsDistillation,
    LogitsMSE,
    RKDAngle,
    RKDDistance,
    get,
    serialize,
)
from edgedistill.distill.recipe import load_recipe
from edgedistill.distill.run import DistillResult, distill
from edgedistill.distill.teachers import EnsembleTeacher, Teacher, load_teacher

__all__ = [
    "AttentionTransfer",
    "DistillResult",
    "DistillationLoss",
    "Distiller",
    "EnsembleTeacher",
    "FeatureDistillation",
    "LabelAccuracy",
    "LogitsDistillation",
    "LogitsMSE",
    "RKDAngle",
    "RKDDistance",
    "Teacher",
    "distill",
    "get",
    "hard_label_crossentropy",
    "load_recipe",
    "load_teacher",
    "serialize",
]
