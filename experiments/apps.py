from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.apps import apps as installed
from django.db.models.signals import post_migrate


class ExperimentsConfig(AppConfig):
    name = "experiments"
    verbose_name = "Experiments"

    def ready(self) -> None:
        # The features beside the core register their folder readers and hooks when imported.
        from experiments import curation, evaluation, search, steps, system  # noqa: F401
        from experiments.live import receivers

        receivers.connect()  # epochs stored become live events (status changes publish from the lifecycle itself)
        post_migrate.connect(_default_project, sender=self, dispatch_uid="gymnos-default-project")


def _default_project(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    """After every ``migrate``, and after a ``flush`` (which sends the same signal): the ``default`` project is
    there. Migration 0016 makes it, but a flush empties every table, and the pages read it by name rather than
    making it again on each request (``experiments.access.visible_projects``)."""
    from experiments.models import DEFAULT_PROJECT

    try:
        project = kwargs.get("apps", installed).get_model("experiments", "Project")  # a flush names no apps
    except LookupError:  # migrated back to before projects
        return
    project.objects.using(using).get_or_create(name=DEFAULT_PROJECT)
