"""TensorFlow Lite Micro bundles: C++ sources, a measured arena size and a run check.

Example:
    >>> from edgedistill.micro import write_micro_bundle
    >>> bundle = write_micro_bundle("model.tflite", "out/micro")   # doctest: +SKIP
    >>> bundle.arena.recommended_bytes                             # doctest: +SKIP
    26704
"""

from edgedistill.micro._ops import TFLM_RESOLVER_METHODS, resolver_methods
from edgedistill.micro.arena import (
    DEFAULT_MARGIN,
    DEFAULT_MIN_MARGIN_BYTES,
    ArenaMeasurement,
    ArenaProbe,
    ArenaUse,
    margin_for,
    measure_arena,
    try_arena,
)
from edgedistill.micro.bundle import (
    BUNDLE_DIR,
    PARITY_SAMPLES,
    MicroBundle,
    bundle_arena_bytes,
    write_evaluated_bundle,
    write_micro_bundle,
)
from edgedistill.micro.carray import c_array_body, model_data_cc, model_data_h
from edgedistill.micro.check import RunCheck, check_run

__all__ = [
    "BUNDLE_DIR", "DEFAULT_MARGIN", "DEFAULT_MIN_MARGIN_BYTES", "PARITY_SAMPLES",
    "TFLM_RESOLVER_METHODS", "ArenaMeasurement", "ArenaProbe", "ArenaUse", "MicroBundle",
    "RunCheck", "bundle_arena_bytes",
    "c_array_body", "check_run", "margin_for", "measure_arena", "model_data_cc",
    "model_data_h", "resolver_methods", "try_arena", "write_evaluated_bundle",
    "write_micro_bundle",
]
