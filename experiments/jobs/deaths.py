"""How a work horse died, said as far as the machine lets us know it.

A horse that dies without ending its job leaves only what ``wait`` returned: a signal or an exit status.
A SIGKILL comes from the kernel's out-of-memory killer or from someone's ``kill -9``, and the signal does
not say which; the kernel counts its out-of-memory kills (``oom_kill`` in ``/proc/vmstat``, for the whole
machine, memory cgroups' kills included), so the worker reads that count when it forks a horse and again
when the horse died: a count that went up makes the out-of-memory killer the likely cause, one that did
not rules it out, and without the count the message says both::

    how_it_died(status, oom_kills_at_fork=4, oom_kills_now=5)
    # "its work horse died (signal 9 (SIGKILL)): most likely the kernel's out-of-memory killer (it killed
    #  1 process on this machine while this work horse ran); give the run less to hold (a smaller batch
    #  or network) or the machine more memory"
"""

from __future__ import annotations

import os
import signal

VMSTAT = "/proc/vmstat"
# Signals a process gets from its own code going wrong, mostly in native code (TensorFlow, a BLAS, a driver).
CRASHES = {
    signal.SIGSEGV: "a crash in native code (an invalid memory access)",
    signal.SIGBUS: "a crash in native code (a bad memory access, e.g. a file that shrank under a mapping)",
    signal.SIGILL: "a crash in native code (an instruction this CPU does not have)",
    signal.SIGFPE: "a crash in native code (an arithmetic fault)",
    signal.SIGABRT: "an abort in native code (a library gave up on a failed check)",
}


def oom_kills(path: str = VMSTAT) -> int | None:
    """How many processes the kernel's out-of-memory killer has killed on this machine since it started;
    None where the kernel does not say (not Linux, a kernel before 4.13, no /proc)."""
    try:
        with open(path, encoding="ascii") as vmstat:
            for line in vmstat:
                name, _, value = line.partition(" ")
                if name == "oom_kill":
                    return int(value)
    except (OSError, ValueError):
        return None
    return None


def how_it_died(status: int | None, oom_kills_at_fork: int | None = None, oom_kills_now: int | None = None) -> str:
    """What ``status`` (from ``wait``) says of a horse's death, honestly: which signal, and what it means."""
    if status is None:
        return "its work horse died (its exit status was not seen)"
    if not os.WIFSIGNALED(status):
        return f"its work horse died (exit status {os.WEXITSTATUS(status)}) without ending its run"
    number = os.WTERMSIG(status)
    try:
        named = signal.Signals(number)
    except ValueError:
        return f"its work horse died (signal {number}): stopped from outside or by the system"
    said = f"its work horse died (signal {number} ({named.name}))"
    if named in CRASHES:
        return f"{said}: {CRASHES[named]}"
    if named != signal.SIGKILL:
        return f"{said}: stopped from outside (not a cancel, which ends a run cancelled)"
    if oom_kills_at_fork is None or oom_kills_now is None:
        return f"{said}: the kernel's out-of-memory killer or a kill (this machine does not count the former)"
    killed = oom_kills_now - oom_kills_at_fork
    if killed <= 0:
        return f"{said}: a kill from outside (not the kernel's out-of-memory killer, which killed nothing meanwhile)"
    processes = "1 process" if killed == 1 else f"{killed} processes"
    return (
        f"{said}: most likely the kernel's out-of-memory killer (it killed {processes} on this machine while this "
        "work horse ran); give the run less to hold (a smaller batch or network) or the machine more memory"
    )
