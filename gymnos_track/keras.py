"""The Keras callback of a tracked run: imported only when a script asks for it (it imports Keras)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras

if TYPE_CHECKING:
    from .run import Run


class KerasCallback(keras.callbacks.Callback):
    """Logs each epoch's ``logs`` into ``run`` (``run.log(logs, epoch=epoch)``); ``finish`` ends it after fit.

    with gymnos_track.start(experiment="boston") as run:
        model.fit(X, y, epochs=10, callbacks=[run.keras_callback()])
    """

    def __init__(self, run: Run, finish: bool = False) -> None:
        super().__init__()
        self.run = run
        self.finish = finish

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs:
            self.run.log(logs, epoch=epoch)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.finish:
            self.run.finish()
