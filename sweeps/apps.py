from django.apps import AppConfig

STUDY_MODULES = (
    "sweeps.advance",
    "sweeps.pruning",
    "optuna.importance",
    "optuna.storages._rdb.models",
    "alembic.command",
    "alembic.config",
    "alembic.migration",
    "alembic.script",
    "sqlalchemy.dialects.sqlite",
    "sqlalchemy.dialects.postgresql",
)


class SweepsConfig(AppConfig):
    name = "sweeps"
    verbose_name = "Sweeps"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from experiments.extensions import (
            FOLLOW_ON,
            LAUNCHING_JOBS,
            REAPERS,
            RUN_CALLBACKS,
            WORKER_MODULES,
            WORKER_READY,
        )
        from experiments.models.lifecycle import execution_ended
        from sweeps.callbacks import trial_callbacks
        from sweeps.launching import heal, release_abandoned
        from sweeps.signals import launches_trials, on_execution_ended, queued_trials

        if trial_callbacks not in RUN_CALLBACKS:
            RUN_CALLBACKS.append(trial_callbacks)
        execution_ended.connect(on_execution_ended, dispatch_uid="sweeps.on_execution_ended")
        # The horse that trained a trial trains the sweep's next one itself when it is first in line: no fresh
        # process (fork, TensorFlow's start) between two trials.
        if queued_trials not in FOLLOW_ON:
            FOLLOW_ON.append(queued_trials)
        # A trial's end moves its sweep on inside the work horse: Optuna is loaded before the fork, with what its
        # RDB storage imports lazily when it opens (its table models, alembic, SQLAlchemy's dialects): 0.4 s a
        # horse otherwise.
        for module in STUDY_MODULES:
            if module not in WORKER_MODULES:
                WORKER_MODULES.append(module)
        if _warm_study not in WORKER_READY:
            WORKER_READY.append(_warm_study)
        # A sweep's samples are checked in the build checker a worker starts for the horses that may queue them.
        if launches_trials not in LAUNCHING_JOBS:
            LAUNCHING_JOBS.append(launches_trials)
        # Nothing stuck (experiments.jobs.reaper): a trial reserved but never queued is failed, and a running sweep
        # whose advance was lost (with Redis' data, say) gets it queued again. In this order: a released trial is
        # what makes its sweep wait for an advance.
        steps = [
            ("release the sweep trials reserved but never queued", release_abandoned),
            ("queue again the advance of the sweeps waiting for one", heal),
        ]
        for step in steps:
            if step not in REAPERS:
                REAPERS.append(step)


def _warm_study() -> None:
    """A worker opens the study storage before it forks (``sweeps.study.warm``); Optuna is imported by then."""
    from sweeps import study  # Optuna: only workers load it

    study.warm()
