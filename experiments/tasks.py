"""RQ jobs: module-level functions that take plain arguments and reload what they need."""

from experiments.sync import sync_trainings


def sync_trainings_job(root=None):
    """Index every execution folder under ``root`` (default: GYMNOS_TRAININGS_ROOT).

    Returns the counts, which RQ keeps as the job's result::

        {"root": "/srv/trainings", "indexed": 3, "unchanged": 120, "errors": 0, "missing": 0, "problems": []}
    """
    return sync_trainings(root).as_dict()


def run_execution(execution_id):
    """Train a queued execution (claimed once, even if the job is delivered twice)."""
    from experiments.running import run

    return run(execution_id)


def _execution_id(job):
    return job.args[0] if job.args else None


def on_job_failure(job, connection, exc_type, exc_value, traceback):
    """RQ calls this when the work horse died or raised outside the engine (which records its own failures)."""
    from experiments.running import horse_died

    horse_died(
        _execution_id(job),
        f"the job failed outside the training: {exc_type.__name__ if exc_type else 'error'}: {exc_value}",
    )


def on_job_stopped(job, connection):
    """RQ calls this after a stop-job command killed the work horse (a cancel)."""
    from experiments.running import stopped

    stopped(_execution_id(job))
