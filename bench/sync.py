"""How fast does sync index execution folders, compared with MLflow ingesting the same metrics?

Writes a synthetic trainings tree in the seed's layout (config, metrics.json, log, model.h5,
three checkpoints, trackers.json, TensorBoard files), then, in one process:

1. full sync into a fresh database (a SQLite file in WAL mode; ``--database-url`` for PostgreSQL);
2. re-sync of the unchanged tree, twice: ``full=True`` (every folder listed: the path before stamps) and the
   default (a finished run's folder stamped: its directories stat'ed, not listed), with their ratio;
3. MLflow's own ingest of the same metrics: per folder ``create_run``, one ``log_batch`` with
   every point, ``set_terminated``, through ``MlflowClient`` into a SQLite store.

    python bench/sync.py                     # 2,000 folders x 100 epochs x 4 metrics
    python bench/sync.py --folders 10000
    python bench/sync.py --quick             # 200 folders, MLflow on 100 of them

TensorFlow is imported before timing (a worker has it loaded; sync validates each distinct
config with the engine's schema, which builds the Keras layers). Goal (issue 4): at least
10x MLflow's points per second; re-sync of 10,000 unchanged folders under 3 s (issue 27: a million under 60 s,
projected from a measured 100,000: ``--folders 100000 --mlflow-folders 200``); it prints the files opened and the
directories listed per unchanged folder. The tree's times are set an hour back: a million runs
are mostly old ones, and sync stamps only a folder still for the stale window (``experiments.index.stamps``).
"""

import argparse
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from experiments.pipeline.execution import STAGES

ROOT = Path(__file__).resolve().parent.parent
METRICS = ("loss", "mean_absolute_error", "val_loss", "val_mean_absolute_error")
LOG = """\
{t} - gymnosd - INFO - Main - Starting gymnos environment ...
{t} - gymnosd - INFO - Model - Building Keras model from network specification
{t} - gymnosd - INFO - Model - Compiling Keras model
{t} - gymnosd - INFO - Trainer - Running experiment: {name} ...
{t} - gymnosd - INFO - Trainer - Loading dataset: boston_housing ...
{t} - gymnosd - DEBUG - Trainer - Loading data took 0.78s
{t} - gymnosd - INFO - Trainer - Splitting dataset -> Fit: 0.6 | Test: 0.2 | Val: 0.2 ...
{t} - gymnosd - INFO - Trainer - Applying 1 transformers ...
{t} - gymnosd - INFO - Trainer - Fitting model with 303 samples ...
{t} - gymnosd - DEBUG - Trainer - Fitting model took 2.34s
{t} - gymnosd - INFO - Trainer - Evaluating model with 101 samples
{t} - gymnosd - INFO - Trainer - Saving model
{t} - gymnosd - INFO - Trainer - Execution finished: trainings/{dataset}/executions/{name}
"""


def configs(count):
    """``count`` distinct variants of the seed's config (a sweep over units and batch size)."""
    seed = json.loads((ROOT / "examples" / "boston_housing.json").read_text())
    variants = []
    for index in range(count):
        config = json.loads(json.dumps(seed))
        config["model"]["network"][0]["units"] = 64 + 8 * index
        config["training"]["batch_size"] = 16 + index % 4 * 16
        config["training"]["epochs"] = 100
        variants.append(json.dumps(config, indent=4).encode())
    return variants


def write_tree(root, folders, epochs, distinct_configs, keep=None, made=None):
    """The synthetic tree; returns ``{folder name: metrics dict}`` for the MLflow side (the first ``keep``
    folders'; default: all). ``made(dataset, name, folder, metrics, config)`` is called as each folder is done."""
    rng = random.Random(4)
    variants = configs(distinct_configs)
    written = {}
    for index in range(folders):
        dataset = ("boston_housing", "iris", "wine", "digits")[index % 4]
        name = (
            f"{index // 3600 % 24:02d}-{index // 60 % 60:02d}-{index % 60:02d}__{1 + index // 86400 % 28:02d}-01-2024"
        )
        folder = root / dataset / "executions" / name
        (folder / "callbacks" / "model_checkpoint").mkdir(parents=True)
        for subdir in ("train", "validation"):
            (folder / "tensorboard" / subdir).mkdir(parents=True)
            (folder / "tensorboard" / subdir / f"events.out.tfevents.{index}.bench.v2").write_bytes(os.urandom(2048))
        start = rng.uniform(200, 600)
        metrics = {}
        for metric in METRICS:
            value, series = start * rng.uniform(0.8, 1.2), []
            for _ in range(epochs):
                value *= rng.uniform(0.9, 1.0)
                series.append(value)
            metrics[metric] = series
        metrics["test_loss"] = [rng.uniform(10, 30)]
        metrics["test_mean_absolute_error"] = [rng.uniform(2, 4)]
        elapsed = {stage: rng.uniform(0, 3) for stage in STAGES}
        hardware = {"platform": "Linux", "hostname": "bench", "python": "3.11", "tensorflow": "2.21.0",
                    "keras": "3.15.1", "cpu": {"model": "bench", "physical_cores": 2, "logical_cores": 2},
                    "memory_bytes": 2**34, "gpus": []}  # fmt: skip
        (folder / "metrics.json").write_text(
            json.dumps({"elapsed": elapsed, "metrics": metrics, "hardware": hardware}, indent=4)
        )
        (folder / "training_config.json").write_bytes(variants[index % distinct_configs])
        (folder / "execution.log").write_text(LOG.format(t="2024-01-01 10:00:00,000", name=name, dataset=dataset))
        (folder / "trackers.json").write_text(json.dumps({"tensorboard": {"log_dir": "tensorboard"}}))
        (folder / "model.h5").write_bytes(os.urandom(4096))
        for epoch in (5, 10, 15):
            (
                folder / "callbacks" / "model_checkpoint" / f"weights.{epoch:02d}-{metrics['val_loss'][epoch]:.2f}.h5"
            ).write_bytes(os.urandom(1024))
        if keep is None or index < keep:
            written[f"{dataset}/{name}"] = metrics
        backdate(folder, time.time() - 3600)
        if made:
            made(dataset, name, folder, metrics, variants[index % distinct_configs])
    return written


class Filler:
    """``--fill``: the index rows of the synthetic tree made by bulk inserts as it is written, not by a first sync
    (13 ms a folder under load: 100,000 folders would take over 20 minutes). Each row has what a sync would
    write of its folder's config, params, metrics' summary, times and fingerprint (the real ``list_folder``), but
    no metric histories (a table the re-sync never reads). A normal ``sync_trainings`` then finds every folder
    unchanged by its fingerprint and stamps it, as it does any finished run that has been still: the re-syncs
    timed after it are the real code on a real index."""

    def __init__(self, root):
        from experiments.models import Experiment

        self.root, self.rows, self.experiments = root, [], {}
        self.Experiment = Experiment

    def __call__(self, dataset, name, folder, metrics, config):
        from django.utils import timezone

        from experiments.index.listing import Folder, list_folder
        from experiments.models import Execution
        from experiments.pipeline.params import flatten

        if dataset not in self.experiments:
            self.experiments[dataset] = self.Experiment.objects.create(name=dataset)
        listing = list_folder(Folder(dataset, name, str(folder)), str(self.root))
        parsed = json.loads(config)
        now = timezone.now()
        execution = Execution(
            experiment=self.experiments[dataset], folder_name=name, folder_path=str(folder),
            status=Execution.Status.SUCCEEDED, title="Boston Housing", config=parsed, params=flatten(parsed),
            elapsed={stage: 1.0 for stage in STAGES}, started_at=now, finished_at=now, fingerprint=listing.fingerprint,
            synced_at=now, trackers={"tensorboard": {"log_dir": "tensorboard"}},
        )  # fmt: skip
        execution.set_metrics(metrics)
        self.rows.append(execution)
        if len(self.rows) >= 1000:
            self.flush()

    def flush(self):
        from experiments.models import Execution

        Execution.objects.bulk_create(self.rows)
        self.rows = []


def backdate(folder, when):
    """Every file's and directory's mtime set to ``when``, deepest first (a finished run's, still since)."""
    for directory, _, names in sorted(os.walk(folder), key=lambda item: -len(item[0])):
        for name in names:
            os.utime(os.path.join(directory, name), (when, when))
        os.utime(directory, (when, when))


def loadavg():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def setup_django(database_url, workdir):
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    else:
        os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gymnos_web.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection

    # A database of its own, never the one in var/ nor one a test run is using.
    name = f"gymnos_bench_{os.getpid()}" if connection.vendor == "postgresql" else str(workdir / "bench.sqlite3")
    connection.settings_dict["TEST"]["NAME"] = name
    original = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    return connection, original


def mlflow_ingest(workdir, written):
    """MLflow's own ingest of the same points; returns seconds spent in the timed loop."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    for noisy in ("alembic", "mlflow"):  # after the import, which sets their levels
        logging.getLogger(noisy).setLevel(logging.WARNING)

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    experiment_id = client.create_experiment("bench")  # creates the store (migrations) before timing
    now = int(time.time() * 1000)
    start = time.perf_counter()
    for name, metrics in written.items():
        run = client.create_run(experiment_id, run_name=name)
        points = [Metric(key, value, now, step) for key, series in metrics.items() for step, value in enumerate(series)]
        client.log_batch(run.info.run_id, metrics=points)
        client.set_terminated(run.info.run_id)
    return time.perf_counter() - start


class FileCalls:
    """Counts the files opened and the directories listed while ``counting`` (Python's audit events, which every
    ``open``, ``os.open``, ``os.scandir`` and ``os.listdir`` raises): what sync asks of the disk per folder."""

    def __init__(self):
        self.counting = False
        self.opened = self.listed = 0
        sys.addaudithook(self.hook)

    def hook(self, event, args):
        if self.counting:
            if event == "open":
                self.opened += 1
            elif event in ("os.scandir", "os.listdir"):
                self.listed += 1

    def reset(self):
        self.opened = self.listed = 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folders", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--configs", type=int, default=10, help="distinct configs in the tree (each is validated once)")
    parser.add_argument(
        "--mlflow-folders", type=int, default=None, help="folders MLflow ingests (default: all; --quick: 100)"
    )
    parser.add_argument(
        "--database-url", default="", help="e.g. postgres://postgres@127.0.0.1:5432/postgres (default: a SQLite file)"
    )
    parser.add_argument("--quick", action="store_true", help="200 folders, MLflow on 100")
    parser.add_argument(
        "--fill", action="store_true", help="index rows by bulk inserts, then one sync stamps them (see Filler)"
    )
    parser.add_argument(
        "--resync-repeat", type=int, default=1, help="re-sync the unchanged tree this many times (median printed)"
    )
    parser.add_argument("--profile", default="", help="write a cProfile of one more stamped re-sync to this file")
    args = parser.parse_args()
    if args.quick:
        args.folders = min(args.folders, 200)
        args.mlflow_folders = args.mlflow_folders or 100
    mlflow_folders = min(args.mlflow_folders or args.folders, args.folders)

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        root = workdir / "trainings"
        connection, original_name = setup_django(args.database_url, workdir)
        from experiments.index.reader import config_problems
        from experiments.index.sync import sync_trainings
        from experiments.models import Execution, MetricHistory

        filler = Filler(root.resolve()) if args.fill else None
        started = time.perf_counter()
        written = write_tree(root, args.folders, args.epochs, args.configs, keep=mlflow_folders, made=filler)
        points = sum(len(series) for metrics in written.values() for series in metrics.values())
        points = points * args.folders // max(1, len(written))
        if filler:
            filler.flush()
        print(f"tree: {args.folders} folders x {args.epochs} epochs x {len(METRICS)} metrics (+2 test values each) "
              f"= {points:,} points, {args.configs} distinct configs, written in {time.perf_counter() - started:.1f} s"
              + (" (index rows filled as written)" if filler else ""), flush=True)  # fmt: skip

        config_problems((ROOT / "examples" / "boston_housing.json").read_bytes())  # the schema's first use, untimed
        python = sys.version.split()[0]
        print(
            f"database: {connection.vendor} {connection.settings_dict['NAME']}; python {python}; {os.cpu_count()} CPUs"
        )

        def timed_sync(full=False):
            start = time.perf_counter()
            report = sync_trainings(root, full=full)
            return time.perf_counter() - start, report

        full, report = timed_sync()
        per_folder = 1000 * full / args.folders
        if filler:
            assert report.unchanged == args.folders, report.line()
            assert report.errors == 0, report.line()
            print(f"stamping sync {full:8.2f} s  {'':>10}           {per_folder:6.2f} ms/folder  ({report.line()})")
        else:
            assert report.indexed == args.folders, report.line()
            assert report.errors == 0, report.line()
            assert MetricHistory.objects.count() == args.folders * (len(METRICS) + 2)
            print(
                f"full sync     {full:8.2f} s  {points / full:>10,.0f} points/s  "
                f"{per_folder:6.2f} ms/folder  ({report.line()})"
            )

        stamps = list(Execution.objects.exclude(folder_stamp="").values_list("folder_stamp", flat=True))
        assert len(stamps) == args.folders, f"{len(stamps)} of {args.folders} folders stamped"
        stat_per_folder = sum(stamp.count("|") + 1 for stamp in stamps) / args.folders  # the folder and subfolders
        calls = FileCalls()
        results = {}
        for label, every in (("re-sync --full", True), ("re-sync", False)):
            calls.reset()
            calls.counting = True
            results[label], report = timed_sync(every)
            calls.counting = False
            assert report.unchanged == args.folders, report.line()
            print(
                f"{label:14}{results[label]:8.2f} s  {'':>10}           "
                f"{1000 * results[label] / args.folders:6.2f} ms/folder  ({report.line()}; per unchanged folder "
                f"{calls.opened / args.folders:.2f} files opened, {calls.listed / args.folders:.2f} directories "
                "listed)",
                flush=True,
            )
        again = results["re-sync"]
        if args.resync_repeat > 1:
            times = [again]
            for _ in range(args.resync_repeat - 1):
                seconds, report = timed_sync()
                assert report.unchanged == args.folders, report.line()
                times.append(seconds)
            again = statistics.median(times)
            print(
                f"re-sync x{len(times)}: "
                + ", ".join(f"{1e6 * t / args.folders:.0f}" for t in times)
                + f" µs/folder; median {1e6 * again / args.folders:.1f} µs/folder  (load average {loadavg()})"
            )
        if args.profile:
            import cProfile
            import pstats

            profile = cProfile.Profile()
            profile.runcall(sync_trainings, root)
            profile.dump_stats(args.profile)
            pstats.Stats(profile).sort_stats("tottime").print_stats(20)
        print(
            f"re-sync --full / re-sync: {results['re-sync --full'] / again:.1f}x  (re-sync: {stat_per_folder:.2f} "
            "directories stat'ed per folder)"
        )

        subset = dict(list(written.items())[:mlflow_folders])
        subset_points = sum(len(series) for metrics in subset.values() for series in metrics.values())
        seconds = mlflow_ingest(workdir, subset)
        mlflow_rate = subset_points / seconds
        print(f"mlflow ingest {seconds:8.2f} s  {mlflow_rate:>10,.0f} points/s  "
              f"{1000 * seconds / mlflow_folders:6.2f} ms/run     "
              f"({mlflow_folders} runs, MlflowClient.log_batch into SQLite)", flush=True)  # fmt: skip

        if not filler:
            print(f"\nsync / mlflow, points per second: {points / full / mlflow_rate:.1f}x  (goal: at least 10x)")
        per_10k = again / args.folders * 10_000
        label = "measured" if args.folders == 10_000 else f"projected from {args.folders:,}"
        print(f"re-sync of 10,000 unchanged folders: {per_10k:.2f} s, {label}  (goal: under 3 s)")
        per_million = again / args.folders * 1_000_000
        label = "measured" if args.folders == 1_000_000 else f"projected from {args.folders:,}"
        print(f"re-sync of 1,000,000 unchanged folders: {per_million:.0f} s, {label}  (goal: under 60 s)")
        connection.creation.destroy_test_db(original_name, verbosity=0)


if __name__ == "__main__":
    main()
