"""A small zoo of tf_keras classifiers, built for any image-shaped input.

Teachers are wide and accurate; students are at least ten times smaller and
use only layers that quantization-aware training and TFLite Micro support
(Conv2D, MaxPooling2D, GlobalAveragePooling2D, Dense, ReLU, Flatten).

Example:
    >>> model = build("student-cnn", input_shape=(8, 8, 1), num_classes=10)
    >>> model.count_params() < 5000
    True
"""

from __future__ import annotations

from collections.abc import Callable

from edgedistill._tf import keras
from edgedistill.errors import EdgeDistillError


def _conv_stack(x, widths: tuple[int, ...], layers, batchnorm: bool = False):
    """Conv blocks; their activated outputs are ``block1``, ``block2``, ... for feature losses."""
    for i, width in enumerate(widths, start=1):
        if batchnorm:
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"block{i}_conv")(x)
            # Momentum 0.9: the inference statistics settle within the ~100 steps an
            # epoch of a small dataset (digits) gives; Keras's 0.99 needs ~500.
            x = layers.BatchNormalization(momentum=0.9, name=f"block{i}_bn")(x)
            x = layers.ReLU(name=f"block{i}")(x)
        else:
            x = layers.Conv2D(width, 3, padding="same", activation="relu", name=f"block{i}")(x)
        if x.shape[1] >= 4 and x.shape[2] >= 4:
            x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    return x


def _as_image(inputs, layers):
    """Gives 2-D inputs (H, W) a channel axis so the conv stacks apply."""
    return layers.Reshape((*inputs.shape[1:], 1))(inputs) if len(inputs.shape) == 3 else inputs


def teacher_cnn(input_shape, num_classes):
    """Three conv-BatchNorm-ReLU blocks and a 256-unit dense head with dropout.

    About 230k parameters on 8x8 inputs, 390k on 28x28. BatchNorm keeps the
    statistics of the training data that data-free distillation matches.
    """
    k = keras()
    inputs = k.Input(input_shape)
    x = _conv_stack(_as_image(inputs, k.layers), (32, 64, 128), k.layers, batchnorm=True)
    x = k.layers.Flatten()(x)
    x = k.layers.Dense(256, activation="relu", name="embedding")(x)
    x = k.layers.Dropout(0.3)(x)
    return k.Model(inputs, k.layers.Dense(num_classes, name="logits")(x), name="teacher_cnn")


def student_cnn(input_shape, num_classes):
    """Two narrow conv blocks and a linear head (~2k params on 8x8)."""
    k = keras()
    inputs = k.Input(input_shape)
    x = _conv_stack(_as_image(inputs, k.layers), (8, 16), k.layers)
    x = k.layers.Flatten(name="embedding")(x)
    return k.Model(inputs, k.layers.Dense(num_classes, name="logits")(x), name="student_cnn")


def student_cnn3(input_shape, num_classes):
    """Three narrow conv blocks (12, 24, 32 channels) and a small linear head.

    About 12.6k parameters on 28x28 inputs, most of them in convolutions:
    trained from scratch on hard labels it overfits (98-99% training accuracy,
    90% on test, on Fashion-MNIST), which is where a teacher's soft targets
    help most.
    """
    k = keras()
    inputs = k.Input(input_shape)
    x = _conv_stack(_as_image(inputs, k.layers), (12, 24, 32), k.layers)
    x = k.layers.Flatten(name="embedding")(x)
    return k.Model(inputs, k.layers.Dense(num_classes, name="logits")(x), name="student_cnn3")


def tiny_cnn(input_shape, num_classes):
    """Three very narrow conv blocks, global average pooling and a linear head.

    About 1.3k parameters at any input size: the far end of a capacity gap,
    where a teacher assistant can help.
    """
    k = keras()
    inputs = k.Input(input_shape)
    x = _conv_stack(_as_image(inputs, k.layers), (4, 8, 12), k.layers)
    x = k.layers.GlobalAveragePooling2D(name="embedding")(x)
    return k.Model(inputs, k.layers.Dense(num_classes, name="logits")(x), name="tiny_cnn")


def teacher_mlp(input_shape, num_classes):
    """Two 512-unit hidden layers with dropout."""
    k = keras()
    inputs = k.Input(input_shape)
    x = k.layers.Flatten()(inputs)
    for _ in range(2):
        x = k.layers.Dense(512, activation="relu")(x)
        x = k.layers.Dropout(0.3)(x)
    return k.Model(inputs, k.layers.Dense(num_classes)(x), name="teacher_mlp")


def student_mlp(input_shape, num_classes):
    """One 32-unit hidden layer."""
    k = keras()
    inputs = k.Input(input_shape)
    x = k.layers.Flatten()(inputs)
    x = k.layers.Dense(32, activation="relu")(x)
    return k.Model(inputs, k.layers.Dense(num_classes)(x), name="student_mlp")


ZOO: dict[str, Callable] = {
    "teacher-cnn": teacher_cnn,
    "student-cnn": student_cnn,
    "student-cnn3": student_cnn3,
    "tiny-cnn": tiny_cnn,
    "teacher-mlp": teacher_mlp,
    "student-mlp": student_mlp,
}


def build(name: str, input_shape: tuple[int, ...], num_classes: int):
    """Builds a fresh, untrained zoo model that outputs logits.

    Raises:
        EdgeDistillError: ``name`` is not in the zoo.
    """
    if name not in ZOO:
        raise EdgeDistillError(f"{name}: not a zoo model; known: {', '.join(ZOO)}")
    return ZOO[name](tuple(input_shape), num_classes)
