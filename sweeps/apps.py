from django.apps import AppConfig


class SweepsConfig(AppConfig):
    name = "sweeps"
    verbose_name = "Sweeps"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from experiments.extensions import RUN_CALLBACKS, WORKER_MODULES
        from experiments.models.lifecycle import execution_ended
        from sweeps.callbacks import trial_callbacks
        from sweeps.signals import on_execution_ended

        if trial_callbacks not in RUN_CALLBACKS:
            RUN_CALLBACKS.append(trial_callbacks)
        execution_ended.connect(on_execution_ended, dispatch_uid="sweeps.on_execution_ended")
        # A trial's end moves its sweep on inside the work horse: Optuna is loaded before the fork.
        for module in ("sweeps.advance", "sweeps.pruning", "optuna.importance"):
            if module not in WORKER_MODULES:
                WORKER_MODULES.append(module)
