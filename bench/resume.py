"""What a run killed mid-training costs when it resumes (#23), and what keeping its state costs each epoch.

Starts `manage.py up --workers 2` on a fresh var/ (SQLite, the embedded Redis, gunicorn), launches the Boston Housing
example with 60 epochs (its early stopping left out, so it trains them all) through the API, and at about epoch 30
kills with SIGKILL the process training it: its work horse (the default, as the out-of-memory killer would), or with
``--kill worker`` the worker that forked it (its horse notices within its heartbeat, 5 s, and goes on training
meanwhile; ``--pause`` slows each epoch so that is visible). The other worker is idle and resumes it. Then the same
config and seed is launched again, uninterrupted, for the final metrics to compare. Last, in this process: the cost
of keeping the state for the Boston example's model against one epoch's fit: the snapshot the training thread takes
(``KeptState.snapshot``: weights, optimizer, callbacks' and random state, in memory) and the write the background
thread does (``KeptState._write``), timed apart; the same two for a model of about 100 MB of weights.

Then the share of the training time keeping the state takes: a 60-epoch Boston fit with resume_every "auto" (the
default) and 1 against the same fit keeping none, in turns (``--cost-only``: that alone, no stack; with
``--with-cost`` the snapshot and write alone too).

    python -m bench.resume [--epochs 60] [--kill-at 30] [--kill horse|worker] [--pause 0] [--cost-only [--with-cost]]

Goals: at most one epoch trained again with the default setting; training goes on within 30 s of the kill when
another worker is idle; keeping the state under 3% of the fit step for the Boston example: the snapshot on the
training thread and the write's CPU on the writer thread beside it (on two cores the training fills, the write's CPU
is taken from it). The fit's wall time with and without is printed too; on this machine two fits' times differ by
more than a few states cost.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from bench.stack import free_port, fresh

ROOT = Path(__file__).resolve().parent.parent


def call(url: str, token: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Authorization": f"Bearer {token}"})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def config(epochs: int, pause: float) -> dict[str, Any]:
    source = json.loads((ROOT / "examples" / "boston_housing.json").read_text())
    source["training"]["epochs"] = epochs
    callbacks = [item for item in source["training"]["callbacks"] if item["type"] != "early_stopping"]
    if pause:
        callbacks.append({"type": "lambda_callback", "on_epoch_end": "tests.hooks.pause"})
    source["training"]["callbacks"] = callbacks
    return dict(source)


def training_process(kill: str) -> psutil.Process:
    """The worker with a work horse (the one training), or that horse."""
    for process in psutil.process_iter(["cmdline"]):
        if "rqworker" in " ".join(process.info["cmdline"] or []) and process.children():
            if kill == "worker":
                return process
            return process.children()[0]
    raise SystemExit("no worker is training")


class Stack:
    def __init__(self, pause: float) -> None:
        self.work, env = fresh("resume")
        env.update(PYTHONUNBUFFERED="1", GYMNOS_RESUME_ATTEMPTS="3", GYMNOS_CALLBACK_MODULES="tests.hooks")
        env["GYMNOS_TEST_EPOCH_PAUSE"] = str(pause)
        self.env, self.port = env, free_port()
        self.log = open(self.work / "up.log", "wb")  # up writes to it until the end
        self.up = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "up", "--workers", "2", "--bind", f"127.0.0.1:{self.port}"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while b"Log in as:" not in (self.work / "up.log").read_bytes():
            if self.up.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("up did not start:\n" + (self.work / "up.log").read_text()[-3000:])
            time.sleep(0.1)
        self.token = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "api_token", "admin"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]  # fmt: skip
        self.base = f"http://127.0.0.1:{self.port}/api/executions"

    def launch(self, source: dict[str, Any]) -> int:
        return int(call(self.base, self.token, source)["id"])

    def detail(self, pk: int) -> dict[str, Any]:
        answer: dict[str, Any] = call(f"{self.base}/{pk}", self.token)
        return answer

    def ended(self, pk: int, timeout: float = 900) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (run := self.detail(pk))["status"] not in {"succeeded", "failed", "cancelled"}:
            if time.monotonic() > deadline:
                raise SystemExit(f"run {pk} did not end: {run['status']}")
            time.sleep(0.5)
        return run

    def stop(self) -> None:
        self.up.send_signal(signal.SIGINT)
        self.up.wait(120)
        self.log.close()


def killed_run(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """Launch, kill the training process at about ``kill_at``, and time how long until an epoch is trained again."""
    pk = stack.launch(config(args.epochs, args.pause))
    while stack.detail(pk)["epochs"] < args.kill_at:
        time.sleep(0.02)
    victim = training_process(args.kill)
    victim.send_signal(signal.SIGKILL)
    killed = time.perf_counter()
    reached = stack.detail(pk)["epochs"]
    requeued = False
    while True:
        run = stack.detail(pk)
        requeued = requeued or run["attempts"] >= 1
        if not requeued:
            reached = max(reached, run["epochs"])
        name = run.get("folder_name")
        folder = stack.work / "trainings" / run["experiment"] / "executions" / name if name else None
        log = (folder / "execution.log").read_text() if folder is not None and folder.is_dir() else ""
        found = re.search(r"resumed at epoch (\d+) \(attempt 2\)", log)
        if requeued and found and run["status"] == "running" and run["epochs"] > int(found.group(1)):
            continued = time.perf_counter() - killed
            break
        if run["status"] in {"succeeded", "failed"} or time.perf_counter() - killed > 600:
            raise SystemExit(f"run {pk} never went on: {run['status']} {run.get('error')}")
        time.sleep(0.02)
    run = stack.ended(pk)
    return {"run": run, "reached": reached, "resumed_at": int(found.group(1)), "continued": continued}


def keeping_cost(saves: int = 20) -> dict[str, float]:
    """The median seconds of one epoch's fit for the Boston example's model, and, for it and for a model of about 100
    MB of weights (with Adam, the file holds three times that), of one state's snapshot (on the training thread) and
    one write (the writer thread's: its wall and CPU time); and the big model's file's MB. Keys: fit,
    boston_snapshot, boston_write, boston_write_cpu, big_snapshot, big_write, big_mb."""
    import keras
    import numpy as np

    from experiments.pipeline import datasets, load_config, network
    from experiments.pipeline.kept_state import KeptState

    source = config(2, 0)
    loaded = load_config(source)
    X, y = datasets.get_dataset("boston_housing").load(Path(tempfile.mkdtemp()))
    fit = X[: int(0.6 * len(X))], y[: int(0.6 * len(y))]

    def built(layers: list[dict[str, Any]] | None) -> keras.Model:
        specs = loaded.model
        if layers is not None:
            changed = json.loads(json.dumps(source))
            changed["model"]["network"] = layers
            specs = load_config(changed).model
        model = network.build_model(specs.input_shape, specs.network)
        model.compile(optimizer=network.make_optimizer(specs.compilation.optimizer), loss="mse")
        return model

    def save_seconds(model: keras.Model, count: int) -> tuple[float, float, float, float]:
        folder = Path(tempfile.mkdtemp(prefix="gymnos-bench-keep-"))
        history = keras.callbacks.History()
        history.history = {"loss": [1.0] * 30, "val_loss": [1.0] * 30}
        keep = KeptState(folder, history)
        keep.set_model(model)
        keep.set_params({"epochs": 1000})
        snapshots, writes, cpu = [], [], []
        for epoch in range(count):
            keep._current_epoch = epoch + 1
            started = time.perf_counter()
            snapshot = keep.snapshot()
            snapshots.append(time.perf_counter() - started)
            started, thread = time.perf_counter(), time.thread_time()
            keep._write(snapshot)  # here, on this thread, to time it alone
            writes.append(time.perf_counter() - started)
            cpu.append(time.thread_time() - thread)
        size = max(path.stat().st_size for path in (folder / ".resume").glob("*.weights.*")) / 2**20
        return statistics.median(snapshots), statistics.median(writes), statistics.median(cpu), size

    boston = built(None)
    boston.fit(*fit, batch_size=32, epochs=1, verbose=0)  # traced once
    epochs = []
    for _ in range(saves):
        started = time.perf_counter()
        boston.fit(*fit, batch_size=32, epochs=1, verbose=0)
        epochs.append(time.perf_counter() - started)
    boston_snapshot, boston_write, boston_cpu, _ = save_seconds(boston, saves)
    # 13*5000 + 5000*5000 + 5000 weights: about 25 million floats, 100 MB.
    big = built([{"type": "dense", "units": 5000, "activation": "relu"}] * 2 + [{"type": "dense", "units": 1}])
    big.fit(np.zeros((32, 13)), np.zeros(32), epochs=1, verbose=0)
    big_snapshot, big_write, _, size = save_seconds(big, 3)
    return {
        "fit": statistics.median(epochs),
        "boston_snapshot": boston_snapshot,
        "boston_write": boston_write,
        "boston_write_cpu": boston_cpu,
        "big_snapshot": big_snapshot,
        "big_write": big_write,
        "big_mb": size,
    }


def cost_lines(cost: dict[str, float]) -> list[str]:
    fit, snapshot, cpu = cost["fit"], cost["boston_snapshot"], cost["boston_write_cpu"]
    return [
        "keeping the state, in this process (median):",
        f"  Boston model: one epoch's fit {1000 * fit:7.2f} ms; one state: the snapshot (training thread) "
        f"{1000 * snapshot:5.2f} ms + the write's CPU (writer thread) {1000 * cpu:5.2f} ms = "
        f"{100 * (snapshot + cpu) / fit:.1f}% of the fit step   goal < 3%; the write's wall time "
        f"{1000 * cost['boston_write']:5.2f} ms",
        f"  a model of ~100 MB of weights: one snapshot {1000 * cost['big_snapshot']:.0f} ms on the training thread,"
        f" one write {cost['big_write']:.2f} s in the background (a {cost['big_mb']:.0f} MB file with Adam's state)",
    ]


def training_share(epochs: int = 60, rounds: int = 6) -> dict[str, tuple[float, float, int, int, float]]:
    """What keeping the state costs as a share of the training time: a Boston fit of ``epochs`` epochs with the
    state kept as ``resume_every`` "auto" (the default) and 1, against the same fit keeping none, in turns
    (``rounds`` each, medians). By setting: (median fit seconds, median share of its fit the snapshots on the
    training thread took, states written, the most epochs between two states written: what a crash may train again
    besides the epoch it was in, median share of its fit the background writes' CPU took). The fit's time includes the
    wait for the last write at its end. The snapshots' share is the steadier on a loaded machine: the difference of
    two fits' times moves by more than a few saves take."""
    import keras
    import numpy as np

    from experiments.pipeline import datasets, load_config, network
    from experiments.pipeline.kept_state import KeptState
    from experiments.pipeline.state_writer import Snapshot

    specs = load_config(config(epochs, 0)).model
    X, y = datasets.get_dataset("boston_housing").load(Path(tempfile.mkdtemp()))
    fit = X[: int(0.6 * len(X))], y[: int(0.6 * len(y))]

    class Counted(KeptState):
        def snapshot(self) -> Snapshot:
            started = time.perf_counter()
            taken = super().snapshot()
            self.took += time.perf_counter() - started
            return taken

        def _write(self, snapshot: Snapshot) -> None:
            started = time.thread_time()
            super()._write(snapshot)
            self.kept_at.append(snapshot.epoch)
            self.wrote_for += time.thread_time() - started  # CPU: what it takes from the training beside it

    def one(every: int | str) -> tuple[float, float, list[int], float]:
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        model = network.build_model(specs.input_shape, specs.network)
        model.compile(optimizer=network.make_optimizer(specs.compilation.optimizer), loss="mse")
        history = keras.callbacks.History()
        keep = Counted(Path(tempfile.mkdtemp(prefix="gymnos-bench-share-")), history, every=every)
        keep.kept_at, keep.took, keep.wrote_for = [], 0.0, 0.0
        model.fit(np.zeros((32, 13)), np.zeros(32), epochs=1, verbose=0)  # traced before the clock starts
        started = time.perf_counter()
        model.fit(*fit, batch_size=32, epochs=epochs, verbose=0, callbacks=[history, keep])
        took = time.perf_counter() - started
        return took, keep.took / took, keep.kept_at, keep.wrote_for / took

    settings: dict[str, int | str] = {"none": epochs + 1, "auto": "auto", "1": 1}
    kept: dict[str, list[int]] = {}
    seconds: dict[str, list[float]] = {name: [] for name in settings}
    shares: dict[str, list[float]] = {name: [] for name in settings}
    writes: dict[str, list[float]] = {name: [] for name in settings}
    names = list(settings)
    for turn in range(rounds):  # each round in another order: what slows the later fits of a round falls on each
        for name in names[turn % len(names) :] + names[: turn % len(names)]:
            every = settings[name]
            took, share, kept[name], written = one(every)
            seconds[name].append(took)
            shares[name].append(share)
            writes[name].append(written)
    result = {}
    for name in settings:
        gaps = [b - a for a, b in zip([0, *kept[name]], [*kept[name], epochs], strict=True)]
        result[name] = (
            statistics.median(seconds[name]),
            statistics.median(shares[name]),
            len(kept[name]),
            max(gaps),
            statistics.median(writes[name]),
        )
    return result


def share_lines(epochs: int, share: dict[str, tuple[float, float, int, int, float]]) -> list[str]:
    base = share["none"][0]
    lines = [f"keeping the state, as a share of a {epochs}-epoch Boston fit (in this process, median of turns):"]
    lines.append(f"  {'no state kept':<30} {base:7.2f} s")
    for name, label in (("auto", 'resume_every "auto" (default)'), ("1", "resume_every 1")):
        took, snapshots, count, gap, written = share[name]
        lines.append(
            f"  {label:<30} {took:7.2f} s  {100 * (took - base) / base:+6.1f}% of the time; the snapshots (training "
            f"thread) {100 * snapshots:4.1f}% + the writes' CPU (background) {100 * written:4.1f}% = "
            f"{100 * (snapshots + written):4.1f}% of it   goal <= 3%;  {count} states written, at most {gap} epochs "
            "between two"
        )
    return lines


def metric(run: dict[str, Any], name: str) -> float | None:
    if name.startswith("test_"):
        tests = run["test_metrics"]
        value = tests.get(name, tests.get(name.removeprefix("test_")))
    else:
        value = run["summary"].get(name, {}).get("last")
    return float(value) if isinstance(value, (int, float)) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--kill-at", type=int, default=30)
    parser.add_argument("--kill", choices=["horse", "worker"], default="horse")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds added to each epoch (tests.hooks.pause)")
    parser.add_argument("--cost-only", action="store_true", help="only what keeping the state costs (no stack)")
    parser.add_argument("--with-cost", action="store_true", help="with --cost-only: the snapshot and write alone too")
    args = parser.parse_args()
    if args.cost_only:
        lines = share_lines(args.epochs, training_share(args.epochs))
        if args.with_cost:
            lines += cost_lines(keeping_cost())
        print("\n".join(lines))
        return

    stack = Stack(args.pause)
    try:
        killed = killed_run(stack, args)
        whole = stack.ended(stack.launch(config(args.epochs, args.pause)))
    finally:
        stack.stop()
    run = killed["run"]
    cost = keeping_cost()
    lost = killed["reached"] - killed["resumed_at"]
    lines = [
        f"a {args.epochs}-epoch Boston run on two workers (manage.py up), its {args.kill} killed (SIGKILL) at epoch "
        f"{killed['reached']}:",
        f"  status {run['status']}, attempts {run['attempts']}, {run['epochs']} epochs recorded",
        f"  resumed at epoch {killed['resumed_at']}: epochs trained again {lost}   goal <= 1",
        f"  from the kill until an epoch was trained again  {killed['continued']:6.1f} s   goal < 30 s",
        "  final metrics, resumed vs uninterrupted (same config and seed):",
    ]
    for name in ("loss", "val_loss", "test_loss"):
        a, b = (metric(answer, name) for answer in (run, whole))
        ratio = f"{a / b:.3f}x" if a is not None and b else "n/a"
        lines.append(f"    {name:<15} {a!s:>12}  vs {b!s:>12}  ({ratio})")
    lines += cost_lines(cost)
    lines += share_lines(args.epochs, training_share(args.epochs))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
