"""The Distiller: a tf_keras Model that trains a student against a frozen teacher.

It follows Keras 3's ``keras.distillation.Distiller`` on tf_keras (Keras 2),
so tfmot can wrap the student. Keras's own ``train_step`` and ``test_step``
run unchanged; the Distiller overrides ``compute_loss`` and
``compute_metrics`` only. ``fit`` on ``tf.data``, callbacks, checkpoints and
``tf.distribute`` strategies therefore work as for any model.

One forward pass of the student gives both its output and the features its
losses read: ``call`` returns ``{"output": ..., layer_name: ...}``. The
teacher runs on the same (augmented) batch in inference mode, unless the
batch brings its outputs precomputed as
``({"inputs": x, "teacher_outputs": {"output": ...}}, y)``.

Example:
    >>> distiller = Distiller(teacher=teacher, student=student,
    ...                       distillation_losses=LogitsDistillation(temperature=4.0),
    ...                       student_loss_weight=0.1)
    >>> distiller.compile(optimizer="adam", metrics=[LabelAccuracy()])
    >>> distiller.fit(train_ds, validation_data=val_ds, epochs=10)
    >>> distiller.student.save("student.h5")
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from edgedistill._tf import keras, tensorflow
from edgedistill.compress.qat import quantize_scope
from edgedistill.distill import adversarial
from edgedistill.distill import losses as losses_lib
from edgedistill.distill.labels import hard_label_crossentropy
from edgedistill.distill.teachers import as_teacher
from edgedistill.errors import EdgeDistillError
from edgedistill.models import outputs_probabilities

tf = tensorflow()
_keras = keras()

INPUTS = "inputs"
TEACHER_OUTPUTS = "teacher_outputs"
OUTPUT = "output"


@_keras.saving.register_keras_serializable(package="edgedistill")
class Distiller(_keras.Model):
    """Trains ``student`` on a weighted sum of hard-label and distillation losses.

    ``loss = student_loss_weight * hard_label_loss(y, student)
             + (1 - student_loss_weight) * sum_i(w_i * distillation_loss_i(teacher, student))``

    Args:
        teacher: a trained model: a tf_keras or Keras 3 model, or a
            :class:`~edgedistill.distill.teachers.Teacher` (SavedModel,
            .tflite, ONNX, ensembles). It is frozen and run in inference mode.
        student: the tf_keras model to train (QAT-wrapped or pruned included).
            Its output must have the teacher's shape.
        distillation_losses: one loss or a list (instances, registered names
            or serialized dicts; see :mod:`edgedistill.distill.losses`).
        distillation_loss_weights: one weight per loss (default 1 each).
        student_loss_weight: weight of the hard-label loss (the CLI's
            ``alpha``); the distillation terms get ``1 - student_loss_weight``.
        adversary: an :class:`~edgedistill.distill.adversarial.Adversary`
            (or its spec, e.g. ``"pgd:epsilon=0.1"``): each batch is also
            perturbed against the student and the same weighted loss is
            taken on the perturbed batch, against the teacher's outputs on
            the clean batch. With ``student_loss_weight=1`` this is plain
            adversarial training.
        adversarial_weight: weight of the loss on the perturbed batch.

    A model that ends in a softmax, teacher or student, is handled: the
    losses see its logits (the softmax's input where Keras kept it, else
    log-probabilities, which differ from logits only by a per-example shift).
    """

    def __init__(
        self,
        teacher,
        student,
        distillation_losses="logits_distillation",
        distillation_loss_weights: Sequence[float] | None = None,
        student_loss_weight: float = 0.1,
        adversary=None,
        adversarial_weight: float = 1.0,
        name: str = "distiller",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self._teacher = as_teacher(teacher)
        if isinstance(teacher, _keras.Model):
            teacher.trainable = False
            self.teacher = teacher
        else:
            self.teacher = self._teacher
        self.student = student
        if tuple(self._teacher.output_shape[1:]) != tuple(student.output_shape[1:]):
            raise EdgeDistillError(
                f"teacher output shape {self._teacher.output_shape} differs from student output "
                f"shape {student.output_shape}; the student must predict the same classes"
            )
        self.student_loss_weight = weight("alpha", student_loss_weight, upper=1.0)
        if not isinstance(distillation_losses, list | tuple):
            distillation_losses = [distillation_losses]
        self.distillation_losses = [losses_lib.get(loss) for loss in distillation_losses]
        if not self.distillation_losses:
            raise EdgeDistillError("distillation_losses: give at least one distillation loss")
        self.distillation_loss_weights = loss_weights(distillation_loss_weights,
                                                      len(self.distillation_losses))
        self._teacher_layers = tuple(sorted(
            {loss.teacher_layer_name for loss in self.distillation_losses} - {None}
        ))
        self._student_features = _feature_model(student, [
            loss.student_layer_name for loss in self.distillation_losses
        ])
        self.adapters = [self._adapter(i, loss) for i, loss in enumerate(self.distillation_losses)]
        self._teacher_gives_probabilities = self._teacher.gives_probabilities
        self._student_gives_probabilities = outputs_probabilities(student)
        self.adversary = None if adversary is None else adversarial.get(adversary)
        self.adversarial_weight = weight("adversarial weight", adversarial_weight)
        self._student_loss = None
        self.adversarial_loss_tracker = _keras.metrics.Mean(name="adversarial_loss")
        self.loss_tracker = _keras.metrics.Mean(name="loss")
        self.student_loss_tracker = _keras.metrics.Mean(name="student_loss")
        self.distillation_loss_tracker = _keras.metrics.Mean(name="distillation_loss")

    def _adapter(self, index: int, loss):
        teacher_shape = (self._teacher.layer_output_shape(loss.teacher_layer_name)
                         if loss.teacher_layer_name else self._teacher.output_shape)
        student_shape = (find_layer(self.student, loss.student_layer_name).output_shape
                         if loss.student_layer_name else self.student.output_shape)
        loss.validate_shapes(teacher_shape, student_shape)
        adapter = loss.build_adapter(teacher_shape, student_shape, name=f"adapter_{index}")
        if adapter is not None:
            adapter.build((None, *student_shape[1:]))
        return adapter

    def compile(self, optimizer="adam", loss=None, metrics=None, **kwargs):
        """Configures training; ``loss`` is the hard-label loss.

        Args:
            optimizer: trains the student and the adapters.
            loss: a Keras loss (name, function or instance) applied to the
                labels and the student's raw output. Default: cross-entropy
                on the student's logits against class indices or, under
                mixup, class-probability rows.
            metrics: metrics of the student's output against the labels.
        """
        self._student_loss = None if loss is None else _keras.losses.get(loss)
        super().compile(optimizer=optimizer, loss=None, metrics=metrics, **kwargs)

    def call(self, inputs, training=None):
        """The student's output and the features the losses read, in one pass."""
        x = _inputs(inputs)
        if self._student_features is None:
            return {OUTPUT: self.student(x, training=training)}
        return self._student_features(x, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
        if y_pred is None:
            y_pred = self(x, training=False)
        alpha = self.student_loss_weight
        needs_teacher = alpha < 1.0 or (self.adversary is not None and y is None)
        teacher = self._teacher_outputs(x) if needs_teacher else None
        student_loss, distillation_loss = self._loss_terms(y, y_pred, sample_weight, teacher)
        total = alpha * student_loss + (1.0 - alpha) * distillation_loss
        if self.adversary is not None:
            adversarial_loss = self._adversarial_loss(x, y, sample_weight, teacher)
            total += self.adversarial_weight * adversarial_loss
        regularization = self.student.losses + [
            r for adapter in self.adapters if adapter is not None for r in adapter.losses
        ]
        if regularization:
            total += tf.add_n(regularization)
        # Weighted by batch size, as Keras averages its own loss over an epoch.
        batch = tf.cast(tf.shape(y_pred[OUTPUT])[0], tf.float32)
        self.loss_tracker.update_state(total, sample_weight=batch)
        self.student_loss_tracker.update_state(student_loss, sample_weight=batch)
        self.distillation_loss_tracker.update_state(distillation_loss, sample_weight=batch)
        if self.adversary is not None:
            self.adversarial_loss_tracker.update_state(adversarial_loss, sample_weight=batch)
        # Gradients are summed over replicas, so each replica's share is divided here.
        return total / tf.cast(_replicas(), total.dtype)

    def _loss_terms(self, y, y_pred, sample_weight, teacher):
        """The hard-label loss and the weighted sum of the distillation losses.

        ``teacher`` holds the teacher's outputs (None when alpha is 1).
        """
        student_output = y_pred[OUTPUT]
        student_logits = _logits(student_output, self._student_gives_probabilities)
        alpha = self.student_loss_weight
        student_loss = tf.constant(0.0)
        if alpha > 0.0 and y is not None:
            if self._student_loss is None:
                per_example = hard_label_crossentropy(y, student_logits)
            else:
                per_example = _per_example(self._student_loss, y, student_output)
            student_loss = _mean(per_example, sample_weight)

        distillation_loss = tf.constant(0.0)
        if alpha < 1.0:
            terms = []
            for loss, loss_weight, adapter in zip(self.distillation_losses,
                                                  self.distillation_loss_weights, self.adapters,
                                                  strict=True):
                t = teacher[loss.teacher_layer_name] if loss.teacher_layer_name else teacher[OUTPUT]
                s = y_pred[loss.student_layer_name] if loss.student_layer_name else student_logits
                if adapter is not None:
                    s = adapter(s)
                if loss.needs_labels:
                    if y is None:
                        raise EdgeDistillError(f"{loss.registered_name}: needs the batch's "
                                               "labels, and this data has none")
                    value = loss.compute_loss(t, s, labels=y)
                else:
                    value = loss.compute_loss(t, s)
                if loss.per_example:
                    value = _mean(value, sample_weight)
                terms.append(loss_weight * value)
            distillation_loss = tf.add_n(terms)
        return student_loss, distillation_loss

    def _adversarial_loss(self, x, y, sample_weight, teacher):
        """The same weighted loss on the batch perturbed against the student.

        The student's outputs on the perturbed batch are matched to the
        teacher's on the clean one (Goldblum et al. 2020, adversarially robust
        distillation): a teacher that is not itself robust is wrong on
        perturbed inputs, and matching it there taught students a fraction of
        the robustness of plain adversarial training (benchmarks/RESULTS.md,
        the adversarial-rs row of 2026-12-06). It also lets the teacher's
        outputs be cached. The student runs in inference mode on the
        perturbed batch, so its BatchNorm statistics follow clean data only.
        """
        inputs = _inputs(x)

        def student_logits(batch, training=False):
            return _logits(self.student(batch, training=training),
                           self._student_gives_probabilities)

        if y is None:
            y = tf.argmax(teacher[OUTPUT], axis=-1)
        x_adv = self.adversary.perturb(student_logits, inputs, y)
        student_loss, distillation_loss = self._loss_terms(
            y, self(x_adv, training=False), sample_weight, teacher)
        alpha = self.student_loss_weight
        return alpha * student_loss + (1.0 - alpha) * distillation_loss

    def compute_metrics(self, x, y, y_pred, sample_weight):
        if y is not None:
            self.compiled_metrics.update_state(y, y_pred[OUTPUT], sample_weight)
        return self.get_metrics_result()

    def predict_step(self, data):
        x, _, _ = _keras.utils.unpack_x_y_sample_weight(data)
        return self.student(_inputs(x), training=False)

    def _teacher_outputs(self, x) -> dict:
        if isinstance(x, dict) and TEACHER_OUTPUTS in x:
            outputs = dict(x[TEACHER_OUTPUTS])
        else:
            x = _inputs(x)
            outputs = self._teacher.outputs(x, self._teacher_layers)
        outputs[OUTPUT] = _logits(outputs[OUTPUT], self._teacher_gives_probabilities)
        return {name: tf.stop_gradient(value) for name, value in outputs.items()}

    @property
    def teacher_layers(self) -> tuple[str, ...]:
        """The teacher layers whose outputs the losses read (besides the final output)."""
        return self._teacher_layers

    @property
    def metrics(self):
        trackers = [self.loss_tracker, self.student_loss_tracker, self.distillation_loss_tracker]
        if self.adversary is not None:
            trackers.append(self.adversarial_loss_tracker)
        compiled = self.compiled_metrics.metrics if self.compiled_metrics is not None else []
        return trackers + compiled

    def get_config(self) -> dict:
        if not isinstance(self.teacher, _keras.Model):
            raise EdgeDistillError(
                f"{self._teacher.name}: a Distiller saves only with a tf_keras teacher; "
                "save distiller.student instead"
            )
        serialize = _keras.saving.serialize_keras_object
        return {
            "name": self.name,
            "teacher": serialize(self.teacher),
            "student": serialize(self.student),
            "distillation_losses": [losses_lib.serialize(x) for x in self.distillation_losses],
            "distillation_loss_weights": self.distillation_loss_weights,
            "student_loss_weight": self.student_loss_weight,
            "adversary": None if self.adversary is None else self.adversary.to_dict(),
            "adversarial_weight": self.adversarial_weight,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        with quantize_scope():
            for key in ("teacher", "student"):
                config[key] = _keras.saving.deserialize_keras_object(
                    config[key], custom_objects=custom_objects
                )
        return cls(**config)


def loss_weights(weights, losses: int) -> list[float]:
    """One weight per distillation loss, each a finite number >= 0; all 1 when None.

    Example:
        >>> loss_weights([1, 0.5], 2)
        [1.0, 0.5]
    """
    if weights is None:
        return [1.0] * losses
    if len(weights) != losses:
        raise EdgeDistillError(
            f"distillation_loss_weights: {len(weights)} weights for {losses} losses; give one "
            "per loss (--loss-weight per --loss)")
    return [weight("loss weight", w) for w in weights]


def weight(name: str, value, upper: float | None = None) -> float:
    """``value`` as a float in [0, ``upper``] (or [0, inf)), else a clear error."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise EdgeDistillError(f"{name}: must be a number, got {value!r:.60}") from None
    if not math.isfinite(value) or value < 0 or (upper is not None and value > upper):
        bound = f"[0, {upper:g}]" if upper is not None else "[0, inf)"
        raise EdgeDistillError(f"{name}: must lie in {bound}, got {value}")
    return value


def find_layer(model, name: str):
    """The layer ``name``, or its tfmot wrapper ``quant_<name>`` in a QAT student."""
    for candidate in (name, f"quant_{name}"):
        try:
            return model.get_layer(candidate)
        except ValueError:
            continue
    some = ", ".join(layer.name for layer in model.layers[:8])
    raise EdgeDistillError(f"{model.name}: has no layer {name!r}; its layers include {some}")


def _feature_model(student, layer_names):
    """A model giving the student's output and named layers' outputs, or None if none named."""
    layer_names = sorted({n for n in layer_names if n})
    if not layer_names:
        return None
    if not getattr(student, "inputs", None):
        raise EdgeDistillError(
            f"{student.name}: feature losses need a functional or Sequential student with "
            "known inputs"
        )
    outputs = {OUTPUT: student.outputs[0]}
    for name in layer_names:
        layer = find_layer(student, name)
        try:
            outputs[name] = layer.output
        except AttributeError:
            raise EdgeDistillError(
                f"{student.name}: layer {name!r} is used more than once; name a layer with "
                "a single output"
            ) from None
    return _keras.Model(student.inputs, outputs, name=f"{student.name}_features")


def _logits(outputs, gives_probabilities: bool):
    if not gives_probabilities:
        return outputs
    # Keras keeps the softmax's input on its output tensor; it is the exact logits.
    kept = getattr(outputs, "_keras_logits", None)
    if kept is not None:
        return kept
    return tf.math.log(tf.clip_by_value(tf.cast(outputs, tf.float32), 1e-7, 1.0))


def _inputs(x):
    """The model inputs of a batch that may also carry precomputed teacher outputs."""
    return x[INPUTS] if isinstance(x, dict) and INPUTS in x else x


def _per_example(loss, y, y_pred):
    if isinstance(loss, _keras.losses.Loss):
        return loss.call(y, y_pred)
    return loss(y, y_pred)


def _mean(per_example, sample_weight):
    """The per-example mean, weighted as Keras does: sum(w * l) / batch size."""
    per_example = tf.cast(per_example, tf.float32)
    if sample_weight is not None:
        per_example *= tf.cast(tf.reshape(sample_weight, tf.shape(per_example)), tf.float32)
    return tf.reduce_mean(per_example)


def _replicas() -> int:
    context = tf.distribute.get_replica_context()
    if context is None:  # called across replicas, outside a training step
        return tf.distribute.get_strategy().num_replicas_in_sync
    return context.num_replicas_in_sync
