"""Time bounds for the parsers of untrusted text (CONVENTIONS 25; docs/security.md, "Linear-time checks").

A parser that takes quadratic time on some input is a denial of service: 80 KB of ``\\"`` once held
the web process for 20 seconds. Each parser is fed the worst input of the largest size it accepts,
and must answer it in about the time an ordinary input of that size takes. It runs in a forked child,
timed by that child's CPU clock (other work on a loaded machine does not count) and killed if it
runs away, so a regression fails the test instead of hanging the suite::

    assert_quick(render, {"link openers": "[a" * 25_000, "table rows": ...}, benign=note_of(50_000))
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

BUDGET = 2.0  # CPU seconds for a worst input: a bound on complexity, not a benchmark
SLOWER = 10  # ...or this many times an ordinary input of the same size, whichever is more
RUNAWAY = 30.0  # wall seconds one input may take before the child is killed: linear work never gets near it

# Property-based fuzzing: each generated input must be answered within the deadline (seconds at
# most for what takes milliseconds), and nothing is written to a .hypothesis folder.
FUZZ = settings(
    deadline=timedelta(seconds=1),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _child(function: Callable[[Any], Any], arguments: list[Any], sender: Any) -> None:
    for argument in arguments:
        started = time.process_time()
        try:
            function(argument)
        except Exception:  # noqa: BLE001 - a refusal is an answer too; only the time is measured here
            pass
        sender.send(time.process_time() - started)


@contextlib.contextmanager
def objects_kept_from_the_child() -> Iterator[None]:
    """Fork with the parent's objects frozen out of the child's garbage collections.

    A test process that trained holds TensorFlow objects in reference cycles; a child that collects them runs
    their finalizers, which call into a runtime whose threads were not forked, and dies without a word. Frozen,
    they are never collected in the child (which only measures its own allocations), and the parent, unfrozen
    once the child has started, collects them as before.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def cpu_seconds(function: Callable[[Any], Any], arguments: list[Any]) -> list[float]:
    """CPU seconds ``function`` takes to return or raise for each argument, in a forked child killed if it runs away."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(function, arguments, sender), daemon=True)
    with objects_kept_from_the_child():
        child.start()
    sender.close()
    times: list[float] = []
    # Per input: a set of inputs that each take a second of CPU may take minutes of wall time on a loaded machine.
    try:
        while len(times) < len(arguments) and receiver.poll(RUNAWAY):
            times.append(receiver.recv())
    except EOFError:
        child.join()
        pytest.fail(f"input {len(times)} ended the child without an answer (exit code {child.exitcode})")
    child.kill()
    child.join()
    if len(times) < len(arguments):
        pytest.fail(f"input {len(times)} ran for more than {RUNAWAY:.0f} s and was killed")
    return times


def assert_quick(function: Callable[[Any], Any], worst: dict[str, Any], benign: Any, budget: float = BUDGET) -> None:
    """``function`` answers each of ``worst`` within ``budget`` CPU seconds (or ``SLOWER`` times ``benign``'s time)."""
    taken = dict(zip(worst, cpu_seconds(function, list(worst.values())), strict=True))
    if max(taken.values()) <= budget:
        return
    (ordinary,) = cpu_seconds(function, [benign])  # a busy machine: compare with an ordinary input's time
    allowed = max(budget, SLOWER * ordinary)
    slow = {name: f"{seconds:.2f} s" for name, seconds in taken.items() if seconds > allowed}
    assert not slow, f"CPU time past {allowed:.1f} s (an ordinary input: {ordinary:.3f} s): {slow}"
