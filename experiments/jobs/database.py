"""Broken database connections in the loops that outlive a request: one rule, used by every such loop.

A request gets Django's handling for free: at its start and end ``close_old_connections`` drops a connection
that errored or outlived ``CONN_MAX_AGE``, and with ``CONN_HEALTH_CHECKS`` (settings) a reused connection is
checked before its first query, so a connection PostgreSQL killed (``pg_terminate_backend``, a failover, a
restart) is replaced instead of answering 500. A loop has no request: ``up``'s supervisor kept its dead
connection and logged "connection is closed" every 5 s for 16 minutes. So every long-lived loop (``up``'s
supervisor and its shutdown, a worker's maintenance and reaper, a work horse's heartbeat and progress) runs
each step through ``step``::

    database.step("check for lost workers", Execution.objects.mark_lost)

which first does what a request's start does (``fresh``), and if the step still meets a broken connection
(``InterfaceError``, ``OperationalError``: the server went away, or a lock timed out) closes it and tries the
step once more on a new one; a step that fails again is logged and skipped (None), and the loop goes on.
Each step must be safe to run twice (a conditional update, an idempotent enqueue).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import TypeVar

from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, connections

log = logging.getLogger(__name__)

T = TypeVar("T")


def _in_transaction() -> bool:
    return any(connection.in_atomic_block for connection in connections.all(initialized_only=True))


def fresh() -> None:
    """What a request's start does: close this thread's connections that errored or are past their age, and have
    a reused one health-checked before its next query. Not inside a transaction (the caller's, or a test's): its
    connection belongs to it."""
    if not _in_transaction():
        close_old_connections()


def close_broken() -> None:
    """Close this thread's connections, so the next query opens a new one (closing a dead one raises nothing)."""
    for connection in connections.all(initialized_only=True):
        with contextlib.suppress(DatabaseError):
            connection.close()


def step(what: str, function: Callable[[], T]) -> T | None:
    """``function()`` on a healthy connection, once more on a new one if the connection broke; None (logged as
    "Could not <what>") when the database still refuses. Inside a transaction it only runs ``function``: a
    transaction cannot move to a new connection, its owner handles the error."""
    if _in_transaction():
        return function()
    fresh()
    for attempt in (1, 2):
        try:
            return function()
        except (InterfaceError, OperationalError) as exc:
            close_broken()
            if attempt == 2:
                log.warning("Could not %s (the database said: %s); trying again later", what, exc)
        except DatabaseError as exc:
            log.warning("Could not %s (the database said: %s); trying again later", what, exc)
            return None
    return None
