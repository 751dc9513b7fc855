"""Compression that runs inside the distillation loop: quantization-aware training."""

from edgedistill.compress.qat import is_quantize_wrapped, quantize_student

__all__ = ["is_quantize_wrapped", "quantize_student"]
