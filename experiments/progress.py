"""The Keras callback a worker passes to the engine: each epoch's metrics, into the database."""

import keras

from experiments import running


class DatabaseProgress(keras.callbacks.Callback):
    """After every epoch, store each metric's history so far, the epoch and the total.

    The dashboard and ``GET /api/executions/{id}`` read these while the model trains.
    """

    def __init__(self, execution_id):
        super().__init__()
        self.execution_id = execution_id
        self.history = {}
        self.epochs_total = None

    def on_train_begin(self, logs=None):
        self.epochs_total = (self.params or {}).get("epochs")

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        running.write_epoch(self.execution_id, self.history, self.epochs_total)
