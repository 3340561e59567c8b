"""Dotted paths a config may name (``lambda_callback`` hooks), importable only from allowed modules.

Configs can come from the web, so the engine never imports a module a config names unless an
administrator listed it in ``GYMNOS_CALLBACK_MODULES`` (comma-separated module names, empty by
default): ``GYMNOS_CALLBACK_MODULES=team_hooks,experiments.pipeline.hooks``.
"""
from __future__ import annotations

import importlib
import os

from .errors import SpecError, did_you_mean

VARIABLE = "GYMNOS_CALLBACK_MODULES"


def allowed_modules():
    """The modules ``lambda_callback`` may import from: ``GYMNOS_CALLBACK_MODULES``, comma-separated."""
    return [name.strip() for name in os.environ.get(VARIABLE, "").split(",") if name.strip()]


def import_allowed(path, key):
    """Return the function at dotted ``path`` (``package.module.function``), if its module is allowed.

    The module is checked against the allowlist before anything is imported: naming
    ``os.system`` is an error, not a call.
    """
    if not isinstance(path, str) or not all(part.isidentifier() for part in path.split(".")) or "." not in path:
        raise SpecError(f"must be a dotted path to a function, such as \"team_hooks.notify\", got {path!r}", key)
    module_name, function_name = path.rsplit(".", 1)
    allowed = allowed_modules()
    if module_name not in allowed:
        now = f"it lists: {', '.join(allowed)}{did_you_mean(module_name, allowed)}" if allowed else "it is empty"
        raise SpecError(
            f"cannot use '{path}': hooks may only come from modules listed in the {VARIABLE} "
            f"environment variable ({now}); an administrator may add '{module_name}' there once they trust every function in it",
            key,
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the config's problem to report
        raise SpecError(f"cannot import module '{module_name}' (listed in {VARIABLE}): {type(exc).__name__}: {exc}", key) from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        names = [name for name in dir(module) if not name.startswith("_") and callable(getattr(module, name))]
        raise SpecError(f"module '{module_name}' has no function '{function_name}'{did_you_mean(function_name, names)}", key)
    return function
