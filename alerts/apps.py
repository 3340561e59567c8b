from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from alerts import firing
        from experiments.extensions import REAPERS
        from experiments.models.lifecycle import epoch_recorded, execution_ended, run_lost
        from sweeps.events import new_best_trial, sweep_finished

        # The core says what happened; alerts decide whom it concerns (after commit: the core sends both then).
        execution_ended.connect(firing.on_execution_ended, dispatch_uid="alerts.on_execution_ended")
        epoch_recorded.connect(firing.on_epoch_recorded, dispatch_uid="alerts.on_epoch_recorded")
        run_lost.connect(firing.on_run_lost, dispatch_uid="alerts.on_run_lost")
        new_best_trial.connect(firing.on_new_best_trial, dispatch_uid="alerts.on_new_best_trial")
        sweep_finished.connect(firing.on_sweep_finished, dispatch_uid="alerts.on_sweep_finished")
        steps = [
            ("alert the rules watching runs that stalled", firing.fire_stalled),
            ("queue the alert deliveries whose wait before a retry is over", firing.release_due_retries),
            ("settle the alert deliveries whose job Redis lost", firing.settle_lost),
        ]
        for step in steps:
            if step not in REAPERS:
                REAPERS.append(step)
