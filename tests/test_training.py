"""Best-epoch restoration: the later of equally good epochs wins, patience counts improvements."""

import numpy as np

from edgedistill._tf import keras
from edgedistill.distill.training import _BestEpoch


def _epochs(values):
    k = keras()
    model = k.Sequential([k.Input((2,)), k.layers.Dense(1)])
    best = _BestEpoch(None, None, monitor="val_accuracy", mode="max",
                      restore_best_weights=True, patience=10)
    best.set_model(model)
    best.on_train_begin()
    for epoch, value in enumerate(values):
        model.set_weights([np.full((2, 1), float(epoch)), np.zeros(1)])
        best.on_epoch_end(epoch, {"val_accuracy": value})
    return best


def test_a_tie_moves_the_best_epoch_later_without_resetting_patience():
    best = _epochs([0.5, 0.9, 0.7, 0.9, 0.8])
    assert best.best_epoch == 3
    assert best.best == 0.9
    np.testing.assert_array_equal(best.best_weights[0], np.full((2, 1), 3.0))
    assert best.wait == 3  # counted from epoch 1, the last improvement


def test_a_strictly_better_epoch_still_wins():
    best = _epochs([0.5, 0.9, 0.95, 0.9])
    assert best.best_epoch == 2
    np.testing.assert_array_equal(best.best_weights[0], np.full((2, 1), 2.0))
