"""The RQ worker class Gymnos runs (settings.RQ["WORKER_CLASS"]), for `rqworker` and `up` alike."""

import logging

from django.db import connections
from rq import Worker

log = logging.getLogger(__name__)


def warm_up():
    """Import TensorFlow, Keras, MLflow (if installed) and the engine now, so each forked job starts with them loaded.

    Only imports: TensorFlow's runtime is not started here (it is not safe across fork). What they
    build is frozen out of the garbage collector (``preload``): the horses share those pages
    instead of copying them, and their collections skip them.
    """
    from experiments.pipeline.preload import paused_collector

    with paused_collector():
        _import_for_jobs()


def _import_for_jobs():
    import importlib.util

    import h5py  # noqa: F401
    import keras  # noqa: F401
    import tensorflow  # noqa: F401

    import experiments.pipeline.keras_callbacks  # noqa: F401
    import experiments.pipeline.trainer  # noqa: F401
    from experiments.pipeline import hardware, network, processing
    import experiments.progress  # noqa: F401
    import experiments.sync  # noqa: F401
    import experiments.tasks  # noqa: F401

    # Lookup tables and the scikit-learn modules a config may name (importing those alone took
    # 0.1 s of every job): pure Python, safe to share with the forked horses.
    network.layer_classes()
    hardware.describe()  # lists the devices (not the TensorFlow runtime), cached for every job
    network.optimizer_classes()
    processing.make_transformer("standard_scaler", {})
    if importlib.util.find_spec("mlflow") is not None:
        import mlflow.tracking  # noqa: F401


class GymnosWorker(Worker):
    """RQ's forking worker, warmed up: a job pays no TensorFlow import.

    Database connections are closed before each fork, so the work horse opens its own
    instead of sharing (and later closing) the worker's socket.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        warm_up()

    def fork_work_horse(self, job, queue):
        connections.close_all()
        return super().fork_work_horse(job, queue)

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        from experiments.running import reap_lost_executions

        try:
            reaped = reap_lost_executions()
        except Exception:  # noqa: BLE001 - maintenance must not stop the worker
            log.exception("Could not check for lost executions")
            return
        if reaped:
            log.warning("Marked %s execution(s) whose worker was lost as failed", reaped)
        connections.close_all()
