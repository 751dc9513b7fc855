"""Compression that runs inside the distillation loop: QAT, pruning and clustering."""

from edgedistill.compress.clustering import Clustering
from edgedistill.compress.pruning import (
    LayerSparsity,
    Pruning,
    is_prune_wrapped,
    prune_student,
    pruning_callbacks,
    sparsity_report,
    strip_student,
)
from edgedistill.compress.qat import is_quantize_wrapped, quantize_student
from edgedistill.compress.schemes import CompressionScheme, get, register, serialize

__all__ = [
    "Clustering",
    "CompressionScheme",
    "LayerSparsity",
    "Pruning",
    "get",
    "is_prune_wrapped",
    "is_quantize_wrapped",
    "prune_student",
    "pruning_callbacks",
    "quantize_student",
    "register",
    "serialize",
    "sparsity_report",
    "strip_student",
]
