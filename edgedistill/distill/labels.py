"""The hard-label loss and accuracy, for class indices or class-probability rows.

Labels are class indices, except under label-mixing augmentation (mixup),
which turns them into rows of class probabilities. One loss and one metric
take both, so a run switches augmentation on without recompiling anything.

Example:
    >>> hard_label_crossentropy(tf.constant([2]), logits)            # class index
    >>> hard_label_crossentropy(tf.constant([[0.0, 0.3, 0.7]]), logits)  # mixed row
"""

from __future__ import annotations

from edgedistill._tf import keras, tensorflow

_keras = keras()


def _is_rows(y, logits) -> bool:
    # Keras may hand class indices over as (batch, 1) floats; rows have a column per class.
    classes = logits.shape[-1]
    return len(y.shape) == len(logits.shape) and classes not in (None, 1) and y.shape[-1] == classes


def hard_label_crossentropy(y, logits):
    """Per-example cross-entropy of ``logits`` against class indices or probability rows."""
    tf = tensorflow()
    logits = tf.cast(logits, tf.float32)
    if _is_rows(y, logits):
        return tf.nn.softmax_cross_entropy_with_logits(tf.cast(y, tf.float32), logits)
    labels = tf.cast(tf.reshape(y, [-1]), tf.int32)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)


def class_indices(y, outputs):
    """Class indices of ``y``: as given, or the most probable class of each row."""
    tf = tensorflow()
    if _is_rows(y, outputs):
        return tf.argmax(y, axis=-1)
    return tf.reshape(y, [-1])


def _accuracy(y, outputs):
    tf = tensorflow()
    predicted = tf.argmax(outputs, axis=-1)
    return tf.cast(tf.equal(predicted, tf.cast(class_indices(y, outputs), predicted.dtype)),
                   tf.float32)


@_keras.saving.register_keras_serializable(package="edgedistill")
class LabelAccuracy(_keras.metrics.MeanMetricWrapper):
    """Top-1 accuracy against class indices or (for mixed labels) each row's top class."""

    def __init__(self, name: str = "accuracy", dtype=None):
        super().__init__(_accuracy, name=name, dtype=dtype)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}
