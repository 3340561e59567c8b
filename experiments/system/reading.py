"""Reading ``system_metrics.jsonl`` (written by ``experiments.pipeline.system_metrics``), within bounds.

One reader for sync, the live panel and the API::

    series = read_file(path)                 # every complete line, thinned to MAX_POINTS samples
    series.time, series.fields["memory_mb"]  # aligned lists; None where a sample lacks the field
    series.epoch_ends                        # epoch 1's end, epoch 2's end, ... (seconds)
    series.summary()                         # {"peak_memory_mb": ..., "mean_cpu_percent": ..., ...}
    more = read_file(path, offset=series.offset)   # only what was appended since

A line that is not complete (the run is writing it, or crashed while writing it) is not read:
``offset`` stops before it. A line that is not a JSON object of numbers is skipped and counted.
What is read is bounded: lines of at most ``MAX_LINE_BYTES``, ``MAX_READ_BYTES`` and ``MAX_LINES``
per read (a bigger file is read from its tail: each line costs its parse, so 64 MiB of three-byte
lines would take minutes), ``MAX_FIELDS`` fields, and at most ``MAX_POINTS`` samples kept: past
that, every other kept sample is dropped and the stride doubles, so a long run is kept evenly in
constant memory. The summary counts every sample read, kept or not.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from experiments import files
from experiments.display import counted
from experiments.pipeline.system_metrics import FILE_NAME

MAX_POINTS = 10_000
MAX_FIELDS = 64
DROPPED_NAMED = 5  # fields past MAX_FIELDS that a problem names (the rest it counts)
MAX_LINE_BYTES = 64 * 1024
MAX_READ_BYTES = 64 * 1024 * 1024
MAX_LINES = 300_000  # 17 days of samples every 5 s; about what 64 MiB holds of real lines
SCAN_BLOCK = 1024 * 1024  # how much is read at a time looking back for where the last MAX_LINES lines begin
MAX_EPOCH_ENDS = 100_000
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
GPU_UTILIZATION = re.compile(r"^gpu_\d+_utilization_percent$")
GPU_MEMORY = re.compile(r"^gpu_\d+_memory_used_mb$")


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


@dataclass
class _Stats:
    count: int = 0
    total: float = 0.0
    peak: float = -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.peak = max(self.peak, value)


@dataclass
class Series:
    """What a read found. ``offset``: the byte after the last complete line read (where to go on from)."""

    time: list[float] = field(default_factory=list)
    fields: dict[str, list[float | None]] = field(default_factory=dict)
    epoch_ends: list[float] = field(default_factory=list)
    started_at: float | None = None
    interval: float | None = None
    samples: int = 0
    start: int = 0  # where the read began: 0 for the whole file (also when the offset asked was past its end)
    offset: int = 0
    stride: int = 1
    bad_lines: int = 0
    first_bad_line: int | None = None
    dropped_fields: set[str] = field(default_factory=set)  # the first few left out, to name them
    dropped_others: bool = False  # and more than those
    skipped_bytes: int = 0
    skipped_lines: bool = False  # the window held more than MAX_LINES lines: only the last were read
    stats: dict[str, _Stats] = field(default_factory=dict)

    # --- building -------------------------------------------------------------------------

    def _bad(self, line_number: int) -> None:
        self.bad_lines += 1
        if self.first_bad_line is None:
            self.first_bad_line = line_number

    def _drop(self, name: str) -> None:
        # Only a few are kept to be named: a file of a million field names must not become a set of them.
        if len(self.dropped_fields) < DROPPED_NAMED:
            self.dropped_fields.add(name)
        elif name not in self.dropped_fields:
            self.dropped_others = True

    def add_line(self, raw: bytes, line_number: int) -> None:
        try:
            line = json.loads(raw)
        except (ValueError, RecursionError):
            self._bad(line_number)
            return
        if not isinstance(line, dict):
            self._bad(line_number)
            return
        moment = _number(line.get("time"))
        if moment is None:
            self._bad(line_number)
            return
        if "started_at" in line:
            self.started_at = _number(line.get("started_at"))
            self.interval = _number(line.get("interval"))
        elif "epoch_end" in line:
            if len(self.epoch_ends) < MAX_EPOCH_ENDS:
                self.epoch_ends.append(moment)
        else:
            self._add_sample(moment, line, line_number)

    def _add_sample(self, moment: float, line: dict[str, Any], line_number: int) -> None:
        values = self._sample_values(line, line_number)
        index = self.samples
        self.samples += 1
        if index % self.stride == 0:
            self._keep(moment, values)

    def _sample_values(self, line: dict[str, Any], line_number: int) -> dict[str, float | None]:
        """A sample's fields, each counted in its stats: a bad name counts a bad line; a field past
        ``MAX_FIELDS`` is dropped."""
        values: dict[str, float | None] = {}
        for name, raw in line.items():
            if name == "time":
                continue
            if not isinstance(name, str) or not FIELD_NAME.match(name):
                self._bad(line_number)
                continue
            if name not in self.fields and name not in self.stats and len(self.stats) >= MAX_FIELDS:
                self._drop(name)
                continue
            value = _number(raw)
            values[name] = value
            if value is not None:
                self.stats.setdefault(name, _Stats()).add(value)
        return values

    def _keep(self, moment: float, values: dict[str, float | None]) -> None:
        """One point of the series; past ``MAX_POINTS``, every other point goes and the stride doubles."""
        for name in values:
            if name not in self.fields:
                self.fields[name] = [None] * len(self.time)
        self.time.append(moment)
        for name, column in self.fields.items():
            column.append(values.get(name))
        if len(self.time) > MAX_POINTS:
            self.time = self.time[::2]
            self.fields = {name: column[::2] for name, column in self.fields.items()}
            self.stride *= 2

    # --- what it adds up to ---------------------------------------------------------------

    def summary(self) -> dict[str, float | int]:
        """Flat name -> number: the run's peak memory, mean CPU and mean GPU use, and how it was sampled.

        ``{"samples": 120, "duration_s": 600.0, "interval_s": 5.0, "peak_memory_mb": 812.4,
        "mean_cpu_percent": 97.1, "mean_system_cpu_percent": 51.0, "peak_system_memory_mb": 6012.0,
        "mean_gpu_percent": 88.2, "peak_gpu_memory_mb": 30122.0}`` (GPU figures only where there were GPUs).
        """
        if not self.samples:
            return {}
        summary: dict[str, float | int] = {"samples": self.samples}
        if self.time:
            summary["duration_s"] = round(self.time[-1], 3)
        if self.interval:
            summary["interval_s"] = self.interval

        def put(key: str, value: float) -> None:
            summary[key] = round(value, 2)

        for name, key, kind in (
            ("memory_mb", "peak_memory_mb", "peak"),
            ("cpu_percent", "mean_cpu_percent", "mean"),
            ("system_cpu_percent", "mean_system_cpu_percent", "mean"),
            ("system_memory_mb", "peak_system_memory_mb", "peak"),
        ):
            stats = self.stats.get(name)
            if stats and stats.count:
                put(key, stats.peak if kind == "peak" else stats.total / stats.count)
        utilization = [stats for name, stats in self.stats.items() if GPU_UTILIZATION.match(name)]
        if sum(stats.count for stats in utilization):
            put("mean_gpu_percent", sum(s.total for s in utilization) / sum(s.count for s in utilization))
        gpu_memory = [stats for name, stats in self.stats.items() if GPU_MEMORY.match(name) and stats.count]
        if gpu_memory:
            put("peak_gpu_memory_mb", max(stats.peak for stats in gpu_memory))
        return summary

    def problems(self) -> list[str]:
        """What could not be read, one sentence each (sync writes them on the run's error, naming the file)."""
        found = []
        if self.skipped_bytes:
            found.append(
                f"is {self.skipped_bytes + MAX_READ_BYTES:,} bytes or more; only its last {MAX_READ_BYTES:,} were read"
            )
        if self.skipped_lines:
            found.append(f"has more than {MAX_LINES:,} lines to read; only its last {MAX_LINES:,} were read")
        if self.bad_lines:
            found.append(
                counted(self.bad_lines, "line is not a JSON object", "lines are not JSON objects")
                + f" of numbers with a time (first at line {self.first_bad_line}); skipped"
            )
        if self.dropped_fields:
            shown = ", ".join(sorted(self.dropped_fields)) + (" and others" if self.dropped_others else "")
            found.append(f"has more than {MAX_FIELDS} fields; left out: {shown}")
        return found

    def histories(self) -> dict[str, list[float | None]]:
        """The index's series: ``system/time``, ``system/<field>`` and ``system/epoch_end`` (epoch N at N - 1)."""
        if not self.time and not self.epoch_ends:
            return {}
        found: dict[str, list[float | None]] = {"system/time": list(self.time)}
        found.update({f"system/{name}": column for name, column in self.fields.items()})
        found["system/epoch_end"] = list(self.epoch_ends)
        return found


class Lines(Protocol):
    """What ``read`` needs of a file: ``files.RunFile``, or ``io.BytesIO`` in a test."""

    def seek(self, offset: int, whence: int = ..., /) -> int: ...

    def readline(self, size: int = ..., /) -> bytes: ...

    def read(self, size: int = ..., /) -> bytes: ...


def read(handle: Lines, size: int, offset: int = 0) -> Series:
    """Read the complete lines of ``handle`` (``size`` bytes long) from ``offset``."""
    if offset > size or offset < 0:
        offset = 0  # the file was replaced: read it whole
    series = Series(start=offset, offset=offset)
    if size - offset > MAX_READ_BYTES:
        series.skipped_bytes = size - offset - MAX_READ_BYTES
        offset = size - MAX_READ_BYTES
        handle.seek(offset)
        offset += len(handle.readline(MAX_LINE_BYTES + 1))  # the line cut in two is not read
    end = min(size, offset + MAX_READ_BYTES)
    start = _start_of_last_lines(handle, offset, end, MAX_LINES)
    series.skipped_lines = start > offset
    offset = start
    handle.seek(offset)
    line_number = 0
    while offset < end:
        raw = handle.readline(MAX_LINE_BYTES + 1)
        if not raw.endswith(b"\n"):
            if len(raw) <= MAX_LINE_BYTES:
                break  # the last line, not complete yet (or cut by a crash): not read
            skipped = _skip_line(handle)
            if skipped is None:
                break  # a long last line that does not end: not complete either
            line_number += 1
            series._bad(line_number)
            offset += len(raw) + skipped
            continue
        line_number += 1
        offset += len(raw)
        if raw.strip():
            series.add_line(raw, line_number)
    series.offset = offset
    return series


def _start_of_last_lines(handle: Lines, start: int, end: int, lines: int) -> int:
    """Where the last ``lines`` complete lines of ``handle[start:end]`` begin (``start`` when it holds fewer):
    found by counting line ends back from ``end``, a block at a time, without parsing anything."""
    position, found = end, 0
    while position > start:
        size = min(SCAN_BLOCK, position - start)
        position -= size
        handle.seek(position)
        block = handle.read(size)
        found += block.count(b"\n")
        if found > lines:
            # The line end just before the last ``lines`` is this block's (found - lines)-th.
            index = -1
            for _ in range(found - lines):
                index = block.find(b"\n", index + 1)
            return position + index + 1
    return start


def _skip_line(handle: Lines) -> int | None:
    """Read past the rest of a line that is too long, a bounded chunk at a time; None if it never ends."""
    skipped = 0
    while True:
        chunk = handle.readline(MAX_LINE_BYTES)
        skipped += len(chunk)
        if chunk.endswith(b"\n"):
            return skipped
        if not chunk:
            return None


def read_file(folder: str | os.PathLike[str], offset: int = 0) -> Series:
    """The folder's ``system_metrics.jsonl`` from ``offset``, through the one bounded reader: at most the
    window (twice), the line cut at its start and a last line too long to keep.

    ``FileNotFoundError`` when it has none, ``files.Refused`` when it may not be read, ``OSError``.
    """
    # Twice the window: looking back for where its last MAX_LINES lines begin reads it once more.
    with files.open_file(folder, FILE_NAME, limit=2 * (MAX_READ_BYTES + 2 * (MAX_LINE_BYTES + 1))) as handle:
        return read(handle, handle.size, offset)


__all__ = ["FILE_NAME", "Series", "read", "read_file", "MAX_POINTS"]
