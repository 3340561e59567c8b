"""Does Gymnos' engine train on the GPU, and do its system metrics see that GPU while it does?

One real run of the engine (``experiments.pipeline.run_experiment``: the schema, the execution
folder, the sampler, metrics.json) on a tiny regression problem made here as an NPZ file (nothing
is downloaded), with system sampling every ``--interval`` seconds. A small Keras callback notes
where the model's first weight lives when training begins and after its first batch. Then the run's
folder is read back: metrics.json's ``hardware`` section and ``system_metrics.jsonl``, the file the
sampler (``SystemSampler``, through NVML) writes. NVIDIA's management library is also read directly
(``GPUs`` and ``Probe``, as tests/test_system_sampler.py's NVML test does, which cannot be collected
without Django). One JSON summary is printed, and written to ``$OUT/gpu_check.json`` when ``OUT``
is set; ``ok`` is true only when the weights were on a CUDA/GPU device, at least one sample shows
``gpu_0_utilization_percent`` above 0 and metrics.json lists the GPU. Exit status 1 otherwise.

Why the torch (or jax) backend: the GPU machines this is run on have CUDA 13 libraries and no
internet, and what travels there is capped at 64 MiB. TensorFlow's wheel is about 600 MB and needs
CUDA 12, so it cannot go; the closest real thing is the same engine on Keras 3 with the ``torch``
backend (``jax`` as a fallback), which those machines have, chosen by ``KERAS_BACKEND``::

    KERAS_BACKEND=torch python -m bench.gpu_check            # 400,000 rows x 32 features, 8 epochs
    python -m bench.gpu_check --small                        # 20,000 rows, 3 epochs: a CPU runs it in seconds
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FEATURES = 32


def make_dataset(path, rows, seed=0):
    """``y = X @ w + noise``: a regression anything can learn, as the arrays ``X`` and ``y`` of an NPZ file."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, FEATURES), dtype=np.float32)
    w = rng.standard_normal(FEATURES).astype(np.float32)
    y = (X @ w + 0.1 * rng.standard_normal(rows).astype(np.float32)).astype(np.float32)
    np.savez(path, X=X, y=y)


def make_config(data_path, epochs, batch_size):
    return {
        "experiment": {"name": "GPU check", "task": "regression"},
        "model": {
            "input_shape": [FEATURES],
            "network": [
                {"type": "dense", "units": 64, "activation": "relu"},
                {"type": "dense", "units": 64, "activation": "relu"},
                {"type": "dense", "units": 1, "activation": "linear"},
            ],
            "compilation": {"optimizer": "adam", "loss": "mse", "metrics": ["mae"]},
        },
        "dataset": {"path": str(data_path)},
        "training": {
            "samples": {"fit": 0.8, "val": 0.1, "test": 0.1},
            "batch_size": batch_size,
            "epochs": epochs,
        },
    }


def device_of(variable):
    """Where a Keras variable's value lives, as its backend names it: ``cuda:0``, ``gpu:0``, ``.../device:GPU:0``."""
    import keras

    value = variable.value
    backend = keras.backend.backend()
    if backend == "jax":
        devices = value.devices() if callable(getattr(value, "devices", None)) else {value.device}
        return ",".join(sorted(f"{device.platform}:{device.id}" for device in devices))
    if backend in ("torch", "tensorflow"):
        return str(value.device)
    return f"{backend} (no device)"


def on_a_gpu(device):
    return device is not None and any(word in device.lower() for word in ("cuda", "gpu"))


def weight_device_callback():
    import keras

    class WeightDevice(keras.callbacks.Callback):
        """Notes the device of the model's first weight when training begins and after its first batch."""

        def __init__(self):
            super().__init__()
            self.seen = {}

        def on_train_begin(self, logs=None):
            self.seen["train_begin"] = device_of(self.model.weights[0])

        def on_train_batch_end(self, batch, logs=None):
            if "first_batch" not in self.seen:
                self.seen["first_batch"] = device_of(self.model.weights[0])

    return WeightDevice()


def read_samples(folder):
    """The sampler's samples (its header line and epoch marks left out), and how many epoch ends it marked."""
    path = folder / "system_metrics.jsonl"
    if not path.exists():
        return [], 0
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    samples = [line for line in lines if "system_cpu_percent" in line]
    return samples, sum(1 for line in lines if "epoch_end" in line)


def highest(samples, field):
    values = [sample[field] for sample in samples if field in sample]
    return max(values) if values else None


def read_nvml():
    """NVML read directly, once, after training (the CUDA context still holds memory): what the test checks."""
    from experiments.pipeline.system_metrics import GPUs, Probe

    gpus = GPUs()
    report = {"names": gpus.names(), "problem": gpus.problem, "sample": {}, "ok": False}
    if not gpus.handles:
        gpus.close()
        return report
    try:
        probe = Probe(gpus=gpus)
        time.sleep(0.2)
        sample = probe.read()
        report["sample"] = {key: value for key, value in sample.items() if key.startswith("gpu_")}
        report["ok"] = all(
            0 <= sample.get(f"gpu_{index}_utilization_percent", -1) <= 100
            and 0 < sample.get(f"gpu_{index}_memory_used_mb", 0) <= sample.get(f"gpu_{index}_memory_total_mb", 0)
            for index in range(len(gpus.handles))
        )
    finally:
        gpus.close()
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="20,000 rows and 3 epochs, for a CPU")
    parser.add_argument("--rows", type=int, help="rows of the dataset (default 400,000; 20,000 with --small)")
    parser.add_argument("--epochs", type=int, help="default 8; 3 with --small")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between system samples (default 0.2)")
    args = parser.parse_args(argv)
    rows = args.rows or (20_000 if args.small else 400_000)
    epochs = args.epochs or (3 if args.small else 8)
    os.environ["GYMNOS_SYSTEM_INTERVAL"] = str(args.interval)  # read by the engine when the run starts

    import keras

    from experiments.pipeline import load_config, run_experiment

    with tempfile.TemporaryDirectory(prefix="gymnos-gpu-check-") as folder:
        work = Path(folder)
        make_dataset(work / "regression.npz", rows)
        config = load_config(make_config(work / "regression.npz", epochs, args.batch_size))
        watcher = weight_device_callback()
        start = time.perf_counter()
        result = run_experiment(
            config,
            trainings_root=work / "trainings",
            cache_dir=work / "cache",
            callbacks=[watcher],
            console_stream=sys.stderr,
        )
        wall = time.perf_counter() - start
        document = result.metrics
        if result.path is not None and (result.path / "metrics.json").exists():
            document = json.loads((result.path / "metrics.json").read_text())
        samples, epoch_marks = read_samples(result.path) if result.path is not None else ([], 0)
        nvml = read_nvml()

    hardware = document.get("hardware", {})
    losses = document.get("metrics", {}).get("loss", [])
    device = watcher.seen.get("first_batch") or watcher.seen.get("train_begin")
    utilization = highest(samples, "gpu_0_utilization_percent")
    summary = {
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "weights_device": watcher.seen,
        "hardware_gpus": hardware.get("gpus", []),
        "rows": rows,
        "batch_size": args.batch_size,
        "system_samples": len(samples),
        "epoch_marks": epoch_marks,
        "max_gpu_0_utilization_percent": utilization,
        "max_gpu_0_memory_used_mb": highest(samples, "gpu_0_memory_used_mb"),
        "epochs_trained": len(losses),
        "final_loss": losses[-1] if losses else None,
        "fit_seconds": round(document.get("elapsed", {}).get("fit_model", 0.0), 2),
        "wall_seconds": round(wall, 2),
        "nvml": nvml,
        "succeeded": result.succeeded,
        "error": result.error,
    }
    problems = []
    if not result.succeeded:
        problems.append(f"the run failed: {result.error}")
    if not on_a_gpu(device):
        problems.append(f"the model's weights were on {device or 'no device seen'}, not a CUDA/GPU device")
    if not utilization:
        problems.append(
            "no system sample shows gpu_0_utilization_percent above 0"
            + (f" (NVML: {nvml['problem']})" if nvml["problem"] else f" ({len(samples)} samples)")
        )
    if not hardware.get("gpus"):
        problems.append(f"metrics.json's hardware section lists no GPU (backend {summary['backend']})")
    summary["ok"] = not problems
    summary["problems"] = problems

    text = json.dumps(summary, indent=2)
    print(text)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_check.json").write_text(text + "\n")
    if problems:
        print("GPU check failed:\n- " + "\n- ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
