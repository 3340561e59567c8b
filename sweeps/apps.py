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
        from experiments.extensions import FOLLOW_ON, RUN_CALLBACKS, WORKER_MODULES, WORKER_READY
        from experiments.models.lifecycle import execution_ended
        from sweeps.callbacks import trial_callbacks
        from sweeps.signals import on_execution_ended, queued_trials

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


def _warm_study() -> None:
    """A worker opens the study storage before it forks (``sweeps.study.warm``); Optuna is imported by then."""
    from sweeps import study  # Optuna: only workers load it

    study.warm()
