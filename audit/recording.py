"""Writing the audit log: ``record(request, Entry.Action.CANCEL, execution=run)`` after the action succeeded.

Call it where the action happens (a view, an API operation, a command), once per thing done, after
the change is saved: an entry says what was done, never what was tried.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from audit.models import Entry
from experiments.models import Execution


def client_address(request: HttpRequest | None) -> str | None:
    """The request's address (REMOTE_ADDR: behind a proxy, the proxy must pass the client's address on)."""
    if request is None:
        return None
    address = request.META.get("REMOTE_ADDR") or None
    return address if isinstance(address, str) else None


def record(
    request: HttpRequest | None,
    action: str,
    execution: Execution | None = None,
    target: str = "",
    actor: Any = None,
    **details: Any,
) -> Entry:
    """One entry: who (the request's user, or ``actor``), what, to what, from where."""
    user = actor if actor is not None else (getattr(request, "user", None) if request is not None else None)
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    if not target and execution is not None:
        target = f"execution {execution.pk} ({execution.experiment.name}/{execution.folder_name or 'queued'})"
    return Entry.objects.create(
        actor=user,
        actor_name=user.get_username() if user is not None else "",
        address=client_address(request),
        action=action,
        execution=execution,
        target=target[:255],
        details=details,
    )
