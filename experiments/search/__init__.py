"""Finding what works across runs: params columns, the query language, parallel coordinates, the search API."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate

from experiments.search import triggers


def _install_triggers(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    """After every ``migrate``: SQLite drops a table's triggers when Django rebuilds it; put back what is missing."""
    if sender.name == "experiments":
        triggers.install(connections[using])


post_migrate.connect(_install_triggers, dispatch_uid="gymnos-search-triggers")
