"""Published MLPerf Tiny latencies the latency model is fitted to or checked against.

Each later-round figure is the "Median throughput is N inf./sec." line of a
``results.txt`` in a public mlcommons/tiny_results_v* repository (closed
division, so the four reference models); latency = 1000 / N ms. Results on the
NUCLEO-L4R5ZI fit one set of constants per runtime; results on other boards
only check them (issue 16: other boards follow from their data sheets).
"""

from __future__ import annotations

from dataclasses import dataclass

MODELS = ("kws_ref_model.tflite", "vww_96_int8.tflite", "pretrainedResnet_quant.tflite",
          "ad01_int8.tflite")
_TASKS = ("kws", "vww", "ic", "ad")
_V10 = "mlcommons/tiny_results_v1.0@c7761cf84076d601c4a0ed2ecc51e77d40696ed2"
_V11 = "mlcommons/tiny_results_v1.1@c32ef94d19429ef1d318e9c7a60002a4bd70e11b"


@dataclass(frozen=True)
class Published:
    """One submission's latency for each of the four models, on one board and runtime."""

    runtime: str
    board: str
    clock_hz: int
    ms: dict[str, float]
    source: str

    def source_of(self, model: str) -> str:
        """Where the figure for ``model`` is written."""
        return self.source.format(task=_TASKS[MODELS.index(model)])


def _from_throughput(runtime: str, board: str, clock_hz: int, throughput: tuple[float, ...],
                     repo: str, path: str) -> Published:
    return Published(runtime, board, clock_hz,
                     {m: 1000.0 / t for m, t in zip(MODELS, throughput, strict=True)},
                     f"{repo}:{path}")


# Fitted: the L4R5ZI at 120 MHz, one set of constants per runtime.
FIT = (
    Published("tflm-cmsis-nn-2020", "nucleo-l4r5zi", 120_000_000,
              dict(zip(MODELS, (181.9, 600.6, 704.2, 10.05), strict=True)),
              "MLPerf Tiny v0.5 reference submission, ../shared/models/mlperf-tiny/README.md "
              "({task})"),
    _from_throughput("microtvm-cmsis-nn-2022", "nucleo-l4r5zi", 120_000_000,
                     (10.019, 3.320, 2.567, 116.212), _V10,
                     "closed/OctoML/results/microtvm_cmsis_nn/NUCLEO_L4R5ZI/{task}/performance/"
                     "results.txt"),
    _from_throughput("onnc-cmsis-nn-2023", "nucleo-l4r5zi", 120_000_000,
                     (12.195, 5.808, 3.348, 123.875), _V11,
                     "closed/Skymizer/results/NUCLEO_L4R5ZI-mbed_os/{task}/performance/"
                     "results.txt"),
)

# Checked only, never fitted: other boards, or the same board built another way.
CHECK = (
    _from_throughput("microtvm-cmsis-nn-2022", "nrf5340-dk", 128_000_000,
                     (13.143, 4.310, 3.163, 159.579), _V10,
                     "closed/OctoML/results/microtvm_cmsis_nn/NRF5340-DK/{task}/performance/"
                     "results.txt"),
    _from_throughput("microtvm-cmsis-nn-2022", "nrf5340-dk", 128_000_000,
                     (13.074, 4.286, 3.146, 159.020), _V11,
                     "closed/Krai/results/NRF5340-DK_MICROTVM-CMSIS-NN/{task}/performance/"
                     "results.txt"),
    # Nuvoton NuMaker-M467HJ: Cortex-M4F at 200 MHz (its systems/NUMAKER_M467HJ-zephyr.json),
    # ONNC with the same CMSIS_5 commit as Skymizer's L4R5ZI submission.
    _from_throughput("onnc-cmsis-nn-2023", "numaker-m467hj (Cortex-M4F, 200 MHz)", 200_000_000,
                     (21.652, 10.129, 5.833, 204.635), _V11,
                     "closed/Nuvoton/results/NUMAKER_M467HJ-zephyr/{task}/performance/"
                     "results.txt"),
    _from_throughput("onnc-cmsis-nn-2023", "nucleo-l4r5zi (Zephyr build)", 120_000_000,
                     (10.679, 5.056, 3.372, 124.906), _V11,
                     "closed/Skymizer/results/NUCLEO_L4R5ZI-zephyr/{task}/performance/"
                     "results.txt"),
)
