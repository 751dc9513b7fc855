"""Trainable adapters that bridge student features to a teacher's width.

FitNets regresses the teacher's feature map from the student's through a
small learned layer. The adapter is trained with the student inside the
:class:`~edgedistill.distill.Distiller` and is never part of the exported
student.
"""

from __future__ import annotations

from edgedistill._tf import keras

_keras = keras()


@_keras.saving.register_keras_serializable(package="edgedistill")
class FeatureAdapter(_keras.layers.Layer):
    """Maps the last axis to ``channels``: a 1x1 convolution on feature maps, dense on vectors.

    Args:
        channels: the teacher feature's width.

    Example:
        >>> adapter = FeatureAdapter(channels=64)
        >>> adapter(tf.zeros((2, 7, 7, 16))).shape
        TensorShape([2, 7, 7, 64])
    """

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)

    def build(self, input_shape):
        # A kernel over the last axis only: for any rank this is a 1x1 convolution.
        self.projection = _keras.layers.Dense(self.channels, name="projection")
        self.projection.build(input_shape)
        super().build(input_shape)

    def call(self, inputs):
        return self.projection(inputs)

    def get_config(self) -> dict:
        return {**super().get_config(), "channels": self.channels}
