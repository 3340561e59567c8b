from __future__ import annotations

from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"
    verbose_name = "Experiments"

    def ready(self) -> None:
        # The features beside the core register their folder readers and hooks when imported.
        from experiments import curation, evaluation, search, steps, system  # noqa: F401
        from experiments.live import receivers

        receivers.connect()  # epochs stored become live events (status changes publish from the lifecycle itself)
