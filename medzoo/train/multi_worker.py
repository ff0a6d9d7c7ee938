"""A training loop for tf.distribute.MultiWorkerMirroredStrategy.

Keras 3's `Model.fit` fails under this strategy (keras-team/keras#20585):
PerReplica batches reach its symbolic build and its metric reduction. This
loop does what fit does for medzoo's runs: one `strategy.run` step per
global batch (gradients all-reduced across workers), epoch loss and accuracy,
validation, and the Keras callbacks (backup, checkpoints, CSV log, early
stopping) driven through `keras.callbacks.CallbackList`.
"""

import numpy as np


def _per_example_loss(loss):
    """The same Keras loss with reduction=None (the loop averages over the global batch)."""
    return loss.__class__.from_config({**loss.get_config(), "reduction": None})


def _correct(labels, predictions, from_logits):
    import tensorflow as tf

    if predictions.shape[-1] == 1:
        threshold = 0.0 if from_logits else 0.5
        hits = tf.cast(predictions[:, 0] > threshold, labels.dtype) == tf.reshape(labels, [-1])
    else:
        hits = tf.cast(tf.argmax(predictions, axis=-1), labels.dtype) == tf.reshape(labels, [-1])
    return tf.reduce_sum(tf.cast(hits, tf.float32))


def fit_multi_worker(model, strategy, dataset, steps, first_epoch, last_epoch, loss, from_logits,
                     validation_data=None, callbacks=(), global_batch_size=32):
    """Trains `model` (compiled under `strategy`) for epochs first_epoch..last_epoch-1.

    Args:
        dataset: tf.data of (inputs, labels) global batches, epochs back to back.
        steps: int. Batches per epoch.
        loss: the Keras loss the model was compiled with.
        from_logits: bool. Whether the model outputs logits (for accuracy).
        validation_data: tf.data of (inputs, labels) batches or None.
        callbacks: Keras callbacks (on_epoch_* and on_train_* hooks are called).
        global_batch_size: int. Loss is averaged over this many examples.

    Returns:
        dict of per-epoch lists (loss, accuracy[, val_loss, val_accuracy]).
    """
    import keras
    import tensorflow as tf

    per_example = _per_example_loss(loss)
    optimizer = model.optimizer
    iterator = iter(strategy.experimental_distribute_dataset(dataset))

    def replica_step(inputs, labels):
        with tf.GradientTape() as tape:
            predictions = model(inputs, training=True)
            losses = per_example(labels, predictions)
            batch_loss = tf.nn.compute_average_loss(losses, global_batch_size=global_batch_size)
            if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):  # mixed precision
                batch_loss = optimizer.scale_loss(batch_loss)
        gradients = tape.gradient(batch_loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        count = tf.cast(tf.shape(labels)[0], tf.float32)
        return tf.reduce_sum(losses), _correct(labels, predictions, from_logits), count

    @tf.function
    def train_step(iterator):
        totals = strategy.run(replica_step, args=next(iterator))
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for value in totals]

    callback_list = keras.callbacks.CallbackList(list(callbacks), model=model)
    model.stop_training = False
    history = {}
    callback_list.on_train_begin()
    for epoch in range(first_epoch, last_epoch):
        callback_list.on_epoch_begin(epoch)
        sums = np.zeros(3)
        for step in range(steps):
            callback_list.on_train_batch_begin(step)
            sums += [float(value) for value in train_step(iterator)]
            callback_list.on_train_batch_end(step, {"loss": sums[0] / sums[2]})
        logs = {"loss": sums[0] / sums[2], "accuracy": sums[1] / sums[2]}
        if validation_data is not None:
            val = np.zeros(3)
            for inputs, labels in validation_data:
                predictions = model(inputs, training=False)
                val += [float(tf.reduce_sum(per_example(labels, predictions))),
                        float(_correct(labels, predictions, from_logits)), float(tf.shape(labels)[0])]
            logs.update(val_loss=val[0] / val[2], val_accuracy=val[1] / val[2])
        callback_list.on_epoch_end(epoch, logs)
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        if model.stop_training:
            break
    callback_list.on_train_end()
    return history
