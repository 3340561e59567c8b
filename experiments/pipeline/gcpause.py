"""Pausing Python's garbage collector around imports that build long-lived objects.

Importing TensorFlow and Keras builds about 400,000 long-lived objects (modules, functions,
classes). While they are built, the cyclic collector runs its full collection half a dozen
times, each one walking every object made so far: about 0.7 s of a 2-core machine's CPU, for
nothing, since import-time objects live until the process exits. Later full collections
(during ``fit``, and the interpreter's last ones at exit) walk them all again.

``paused_collector()`` pauses the collector around such imports and then *freezes* every object
alive at that point, theirs and whatever came before (``gc.freeze``: moved to a permanent
generation that collections skip). Before a fork this is also what the gc documentation
recommends, so the workers' horses share those pages instead of copying them on the first
collection.

A frozen object is never collected by the cyclic collector. Only freeze what lives as long as
the process anyway: imported modules, lookup tables, not a run's model or data.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused_collector() -> Iterator[None]:
    """Run the block with the cyclic collector off, then freeze every object alive (not only the block's)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
