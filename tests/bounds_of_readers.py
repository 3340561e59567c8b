"""Helpers for the readers' worst-case tests: a reader's cost measured in a forked child, and run folders to feed it.

The cost is measured in a child process so that what the reader allocates in C (a JSON parser's
lists and floats, a regex's backtracking) counts too, and so that a reader stuck for minutes is
killed at its deadline instead of holding up the suite.
"""

import datetime as dt
import gc
import json
import os
import resource
import select
import signal
import time
from dataclasses import dataclass

from experiments.index.listing import Folder, list_folder
from experiments.index.reader import Record, read_folder

MiB = 1 << 20


@dataclass
class Cost:
    seconds: float
    grown: int  # bytes the child's peak resident memory grew by
    raised: str | None  # what the call raised, if it did
    result: object  # what ``summary(result)`` gave, when it did not raise


def cost(call, deadline, summary=lambda result: None):
    """Run ``call()`` in a forked child within ``deadline`` seconds; its ``Cost``, or AssertionError past it."""
    read_end, write_end = os.pipe()
    gc.freeze()  # the parent's objects are never collected in the child (tests/bounds.py says why)
    pid = os.fork()
    if pid == 0:  # the child: measure, report, and leave without running the parent's clean-ups
        try:
            os.close(read_end)
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            started = time.perf_counter()
            raised, result = None, None
            try:
                result = summary(call())
            except BaseException as exc:  # noqa: BLE001 - reported to the parent, which asserts on it
                raised = f"{type(exc).__name__}: {str(exc)[:300]}"
            seconds = time.perf_counter() - started
            grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
            with os.fdopen(write_end, "w") as report:
                json.dump({"seconds": seconds, "grown": grown, "raised": raised, "result": result}, report)
        finally:
            os._exit(0)
    gc.unfreeze()
    os.close(write_end)
    ready, _, _ = select.select([read_end], [], [], deadline)
    if not ready:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_end)
        raise AssertionError(f"the reader took more than {deadline} s")
    with os.fdopen(read_end) as report:
        found = json.loads(report.read() or "{}")
    os.waitpid(pid, 0)
    assert found, "the child died before reporting (killed for memory?)"
    return Cost(**found)


def read(folder, root):
    """Sync's reading of one folder (no database): the Record."""
    folder = Folder(folder.parent.parent.name, folder.name, str(folder))
    return read_folder(folder, list_folder(folder, str(root)), dt.datetime.now(dt.UTC), dt.timedelta(minutes=30))


def problems(record: Record) -> list[str]:
    return list(record.problems)


def filled(head: bytes, item: bytes, tail: bytes, size: int) -> bytes:
    """``head + item * n + tail``, as long as fits in ``size`` bytes."""
    return head + item * ((size - len(head) - len(tail)) // len(item)) + tail


def one_line(path, size, end=b""):
    """A file of ``size`` bytes without a line end (sparse: made in a moment, takes no disk)."""
    with open(path, "wb") as handle:
        handle.truncate(size - len(end))
        handle.seek(size - len(end))
        handle.write(end)
