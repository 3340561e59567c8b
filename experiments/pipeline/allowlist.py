"""What a config may reach beyond its run: modules to import, hosts to post to.

Configs can come from the web, so the engine never imports a module a config names unless an
administrator listed it in ``GYMNOS_CALLBACK_MODULES`` (comma-separated module names; by default
only ``experiments.pipeline.hooks``, Gymnos' own logging hooks; empty if set empty):
``GYMNOS_CALLBACK_MODULES=team_hooks,experiments.pipeline.hooks``.

Nor does it post (``remote_monitor``) to a host that is not in ``GYMNOS_REMOTE_MONITOR_HOSTS``
(comma-separated ``host`` or ``host:port``; default ``localhost,127.0.0.1,::1``; ``*`` allows
any host): a config must not turn a worker into a client of the services on its network.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from .errors import ComponentError, did_you_mean

VARIABLE = "GYMNOS_CALLBACK_MODULES"
DEFAULT_MODULES = "experiments.pipeline.hooks"  # Gymnos' own hooks: they only write to the run's log
HOSTS_VARIABLE = "GYMNOS_REMOTE_MONITOR_HOSTS"
DEFAULT_HOSTS = "localhost,127.0.0.1,::1"


def allowed_modules() -> list[str]:
    """The modules ``lambda_callback`` may import from: ``GYMNOS_CALLBACK_MODULES``, comma-separated."""
    return [name.strip() for name in os.environ.get(VARIABLE, DEFAULT_MODULES).split(",") if name.strip()]


def module_problem(path: object) -> str | None:
    """What is wrong with a hook's dotted ``path`` before anything is imported, or None.

    Naming ``os.system`` is an error, not a call: the module is checked against the allowlist.
    """
    if not isinstance(path, str) or "." not in path or not all(part.isidentifier() for part in path.split(".")):
        return f'must be a dotted path to a function, such as "team_hooks.notify", got {path!r}'
    module_name = path.rsplit(".", 1)[0]
    allowed = allowed_modules()
    if module_name not in allowed:
        now = f"it lists: {', '.join(allowed)}{did_you_mean(module_name, allowed)}" if allowed else "it is empty"
        return (
            f"cannot use '{path}': hooks may only come from modules listed in the {VARIABLE} "
            f"environment variable ({now}); an administrator may add '{module_name}' there once they trust every "
            "function in it"
        )
    return None


def import_allowed(path: str, key: str) -> Callable[..., Any]:
    """Return the function at dotted ``path`` if its module is allowed; ``ComponentError`` at ``key`` otherwise."""
    problem = module_problem(path)
    if problem:
        raise ComponentError(problem, key)
    module_name, function_name = path.rsplit(".", 1)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the config's problem to report
        raise ComponentError(
            f"cannot import module '{module_name}' (listed in {VARIABLE}): {type(exc).__name__}: {exc}", key
        ) from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        names = [name for name in dir(module) if not name.startswith("_") and callable(getattr(module, name))]
        raise ComponentError(
            f"module '{module_name}' has no function '{function_name}'{did_you_mean(function_name, names)}", key
        )
    return function


def allowed_hosts() -> list[str]:
    """The ``host`` and ``host:port`` entries ``remote_monitor`` may post to (lower case, IPv6 unbracketed)."""
    raw = os.environ.get(HOSTS_VARIABLE)
    entries = (DEFAULT_HOSTS if raw is None else raw).split(",")
    return [entry.strip().lower().replace("[", "").replace("]", "") for entry in entries if entry.strip()]


def url_problem(url: str) -> str | None:
    """What stops ``remote_monitor`` posting to ``url``, or None when its host (and port) is allowed."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return f"has an invalid port: {url!r}"
    allowed = allowed_hosts()
    if "*" in allowed or host in allowed or f"{host}:{port}" in allowed:
        return None
    listed = f"it lists: {', '.join(allowed)}" if allowed else "it is empty"
    return (
        f"cannot post to {host}: remote_monitor may only post to hosts listed in the {HOSTS_VARIABLE} "
        f"environment variable ({listed}); an administrator may add '{host}' or '{host}:{port}' there"
    )
