from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ExperimentsConfig(AppConfig):
    name = "experiments"
    verbose_name = "Experiments"

    def ready(self) -> None:
        # The features beside the core register their folder readers and hooks when imported.
        from experiments import curation, evaluation, search, steps, system  # noqa: F401
        from experiments.live import receivers
        from experiments.models.projects import default_after_migrate

        receivers.connect()  # epochs stored become live events (status changes publish from the lifecycle itself)
        post_migrate.connect(default_after_migrate, sender=self, dispatch_uid="gymnos-default-project")
