"""RQ jobs: module-level functions that take plain arguments and reload what they need."""
from experiments.sync import sync_trainings


def sync_trainings_job(root=None):
    """Index every execution folder under ``root`` (default: GYMNOS_TRAININGS_ROOT).

    Returns the counts, which RQ keeps as the job's result::

        {"root": "/srv/trainings", "indexed": 3, "unchanged": 120, "errors": 0, "missing": 0, "problems": []}
    """
    return sync_trainings(root).as_dict()
