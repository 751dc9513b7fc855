"""The Distiller: a tf_keras Model that trains a student against a frozen teacher.

Because it is a ``tf_keras.Model`` with its own ``train_step`` and
``test_step``, everything Keras offers works unchanged: ``fit`` on a
``tf.data`` pipeline, callbacks, checkpoints and ``tf.distribute`` strategies.
Losses are averaged with ``tf.nn.compute_average_loss``, which divides by the
global batch size under a distribution strategy and by the batch otherwise.

Example:
    >>> distiller = Distiller(teacher=teacher, student=student,
    ...                       distillation_losses=LogitsDistillation(temperature=4.0),
    ...                       student_loss_weight=0.1)
    >>> distiller.compile(optimizer="adam", metrics=["accuracy"])
    >>> distiller.fit(train_ds, validation_data=val_ds, epochs=10)
    >>> distiller.student.save("student.keras")
"""

from __future__ import annotations

from collections.abc import Sequence

from edgedistill._tf import keras, tensorflow
from edgedistill.distill import losses as losses_lib
from edgedistill.errors import EdgeDistillError
from edgedistill.models import outputs_probabilities

tf = tensorflow()
_keras = keras()


class Distiller(_keras.Model):
    """Trains ``student`` on a weighted sum of hard-label and distillation losses.

    ``loss = student_loss_weight * CE(y, student)
             + (1 - student_loss_weight) * sum(w_i * distillation_loss_i(teacher, student))``

    Args:
        teacher: a trained Keras model; it is frozen and run in inference mode.
            Models ending in a softmax are handled: their log-probabilities
            serve as logits.
        student: the tf_keras model to train (QAT-wrapped or pruned models
            included). It must output logits of the teacher's shape.
        distillation_losses: one loss or a list (names, configs or instances,
            see :mod:`edgedistill.distill.losses`).
        distillation_loss_weights: one weight per distillation loss (default 1 each).
        student_loss_weight: weight of the hard-label loss (the ``alpha`` of the
            CLI); the distillation terms get ``1 - student_loss_weight``.
    """

    def __init__(
        self,
        teacher,
        student,
        distillation_losses="logits_distillation",
        distillation_loss_weights: Sequence[float] | None = None,
        student_loss_weight: float = 0.1,
        name: str = "distiller",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if teacher.output_shape != student.output_shape:
            raise EdgeDistillError(
                f"teacher output shape {teacher.output_shape} differs from student output "
                f"shape {student.output_shape}; the student must predict the same classes"
            )
        if not 0.0 <= student_loss_weight <= 1.0:
            raise EdgeDistillError(f"alpha: must lie in [0, 1], got {student_loss_weight}")
        if not isinstance(distillation_losses, list | tuple):
            distillation_losses = [distillation_losses]
        self.distillation_losses = [losses_lib.get(loss) for loss in distillation_losses]
        weights = distillation_loss_weights or [1.0] * len(self.distillation_losses)
        if len(weights) != len(self.distillation_losses):
            raise EdgeDistillError(
                f"distillation_loss_weights: {len(weights)} weights for "
                f"{len(self.distillation_losses)} losses"
            )
        self.distillation_loss_weights = [float(w) for w in weights]
        self.student_loss_weight = float(student_loss_weight)
        self.teacher = teacher
        self.teacher.trainable = False
        self.student = student
        self._teacher_gives_probabilities = outputs_probabilities(teacher)
        self.loss_tracker = _keras.metrics.Mean(name="loss")
        self.student_loss_tracker = _keras.metrics.Mean(name="student_loss")
        self.distillation_loss_tracker = _keras.metrics.Mean(name="distillation_loss")

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def _teacher_logits(self, x):
        out = self.teacher(x, training=False)
        if self._teacher_gives_probabilities:
            out = tf.math.log(tf.clip_by_value(tf.cast(out, tf.float32), 1e-7, 1.0))
        return tf.stop_gradient(out)

    def _compute_losses(self, x, y, student_logits):
        teacher_logits = self._teacher_logits(x)
        hard = _keras.losses.sparse_categorical_crossentropy(y, student_logits, from_logits=True)
        soft = tf.add_n(
            [
                w * loss(teacher_logits, student_logits)
                for w, loss in zip(
                    self.distillation_loss_weights, self.distillation_losses, strict=True
                )
            ]
        )
        a = self.student_loss_weight
        student_loss = tf.nn.compute_average_loss(hard)
        distillation_loss = tf.nn.compute_average_loss(soft)
        total = a * student_loss + (1.0 - a) * distillation_loss
        return total, student_loss, distillation_loss

    def _record(self, y, student_logits, total, student_loss, distillation_loss):
        self.loss_tracker.update_state(total)
        self.student_loss_tracker.update_state(student_loss)
        self.distillation_loss_tracker.update_state(distillation_loss)
        self.compiled_metrics.update_state(y, student_logits)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x, y = data[0], data[1]
        with tf.GradientTape() as tape:
            student_logits = self.student(x, training=True)
            total, student_loss, distillation_loss = self._compute_losses(x, y, student_logits)
            regularization = self.student.losses
            loss = total + tf.add_n(regularization) if regularization else total
        variables = self.student.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return self._record(y, student_logits, total, student_loss, distillation_loss)

    def test_step(self, data):
        x, y = data[0], data[1]
        student_logits = self.student(x, training=False)
        total, student_loss, distillation_loss = self._compute_losses(x, y, student_logits)
        return self._record(y, student_logits, total, student_loss, distillation_loss)

    @property
    def metrics(self):
        trackers = [self.loss_tracker, self.student_loss_tracker, self.distillation_loss_tracker]
        return trackers + self.compiled_metrics.metrics if self.compiled_metrics else trackers

    def get_config(self) -> dict:
        return {
            "distillation_losses": [losses_lib.serialize(x) for x in self.distillation_losses],
            "distillation_loss_weights": self.distillation_loss_weights,
            "student_loss_weight": self.student_loss_weight,
        }
