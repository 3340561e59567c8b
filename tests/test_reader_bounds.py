"""The log reader and sync's folder readers, fed the worst input of the largest size each allows, and fuzzed.

Each worst case is measured in a forked child (tests/bounds_of_readers.py): it must end within its
deadline, grow memory by at most its bound, and end as the folder's error (``record.problems``),
never as an exception. The bounds are about complexity, not speed: generous for a loaded machine,
but a reader that went quadratic, or kept a copy per line, would blow through them.

The fuzz writes random bytes and random JSON shapes to each file and asserts the same, per input.
"""

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from experiments import logtail
from experiments.curation import sidecar
from experiments.evaluation.report import MAX_BYTES as EVALUATION_BYTES
from experiments.index import reader
from experiments.models import Execution
from experiments.system import reading
from tests.bounds_of_readers import (
    MiB,
    cost,
    filled,
    one_line,
    problems,
    read,
)
from tests.folders import write_execution

CONFIG = reader.CONFIG_MAX_BYTES  # 1 MiB
TRACKERS = reader.TRACKERS_MAX_BYTES  # 64 KiB
SIDECAR = sidecar.MAX_BYTES  # 256 KiB
EVALUATION = EVALUATION_BYTES  # 8 MiB
# metrics.json's bound is a setting (GYMNOS_MAX_METRICS_MB, 32 by default); these cases run at 8 and the
# linearity case shows what 32 costs (time and memory grow with the size, docs/security.md has the figures).
METRICS = 8 * MiB
SYSTEM = reading.MAX_READ_BYTES  # 64 MiB: a bigger file is read from its tail
DEEP = 62  # with the file's own object and list, 64 levels: the most that are read


def nested(size, head=b'{"a": [', tail=b"0]}"):
    return filled(head, b"[" * DEEP + b"0" + b"]" * DEEP + b",", tail, size)


def unterminated_quotes(size, head=b'{"a": "'):
    return filled(head, b'\\"', b"", size)


def long_integer(head=b'{"a": ', tail=b"}"):
    return head + b"7" * 5000 + tail


# (file, what, its bytes, deadline in seconds, most memory growth, marks)
CASES: list[tuple[str, str, Callable[[], bytes], int, int, list[Any]]] = [
    ("training_config.json", "nesting at the limit", lambda: nested(CONFIG), 90, 320 * MiB, []),
    ("training_config.json", "a million numbers", lambda: filled(b'{"a": [', b"0,", b"0]}", CONFIG), 30, 128 * MiB, []),
    ("training_config.json", "empty objects", lambda: filled(b'{"a": [', b"{},", b"{}]}", CONFIG), 60, 320 * MiB, []),
    ("training_config.json", "an integer of 5,000 digits", long_integer, 10, 16 * MiB, []),
    ("training_config.json", "unterminated quotes", lambda: unterminated_quotes(CONFIG), 10, 64 * MiB,
     []),
    ("training_config.json", "one byte over", lambda: b" " * (CONFIG + 1), 5, 16 * MiB, []),
    ("metrics.json", "floats", lambda: filled(b'{"metrics": {"loss": [', b"0.5,", b"0.5]}}", METRICS), 60,
     16 * METRICS, []),
    ("metrics.json", "small integers", lambda: filled(b'{"metrics": {"loss": [', b"0,", b"0]}}", METRICS), 60,
     16 * METRICS, []),
    ("metrics.json", "nesting past the limit", lambda: filled(b"", b"[", b"", METRICS), 30, 16 * METRICS, []),
    ("metrics.json", "an integer of 5,000 digits", lambda: long_integer(b'{"metrics": {"loss": [', b"]}}"), 10,
     16 * MiB, []),
    ("metrics.json", "unterminated quotes", lambda: unterminated_quotes(METRICS), 20, 4 * METRICS,
     []),
    ("metrics.json", "one byte over", lambda: b" " * (METRICS + 1), 5, 16 * MiB, []),
    ("trackers.json", "nesting at the limit", lambda: nested(TRACKERS), 10, 64 * MiB, []),
    ("trackers.json", "unterminated quotes", lambda: unterminated_quotes(TRACKERS), 10, 64 * MiB,
     []),
    ("curation.json", "escapes in the notes", lambda: filled(b'{"notes": "', b"\\n", b'"}', SIDECAR), 10, 64 * MiB,
     []),
    ("curation.json", "tags", lambda: filled(b'{"tags": [', b'"a",', b'"a"]}', SIDECAR), 10, 64 * MiB, []),
    ("curation.json", "an integer of 5,000 digits", lambda: long_integer(b'{"archived": ', b"}"), 10, 16 * MiB,
     []),
    ("curation.json", "unterminated quotes", lambda: unterminated_quotes(SIDECAR), 10, 64 * MiB, []),
    ("evaluation.json", "floats", lambda: filled(b'{"headline": {"r2": 1}, "a": [', b"0.5,", b"0]}", EVALUATION),
     30, 16 * EVALUATION, []),
    ("evaluation.json", "escapes", lambda: filled(b'{"headline": {}, "a": "', b"\\u0000", b'"}', EVALUATION), 30,
     8 * EVALUATION, []),
    ("evaluation.json", "unterminated quotes", lambda: unterminated_quotes(EVALUATION), 30, 8 * EVALUATION,
     []),
    ("system_metrics.jsonl", "lines of three bytes", lambda: b"{}\n" * (SYSTEM // 3), 60, 64 * MiB, []),
    ("system_metrics.jsonl", "samples of a time only", lambda: b'{"time": 1}\n' * (SYSTEM // 12), 60, 64 * MiB, []),
    ("system_metrics.jsonl", "a new field name in every place", lambda: distinct_fields(SYSTEM), 120, 64 * MiB, []),
    ("system_metrics.jsonl", "one line", lambda: b"x" * SYSTEM, 30, 64 * MiB, []),
    ("execution.log", "newlines only", lambda: b"\n" * (4 * MiB), 10, 32 * MiB, []),
    ("execution.log", "timestamps only", lambda: b"2019-04-08 06:16:29,724 - \n" * (4 * MiB // 27), 10, 32 * MiB, []),
    ("execution.log", "bytes that are not UTF-8", lambda: b"\xff\xfe" * (2 * MiB), 10, 32 * MiB, []),
]  # fmt: skip


def distinct_fields(size):
    """Lines of 4,000 fields each, every name new: a reader that remembered each name left out grew by 500 MB."""
    lines, total, number = [], 0, 0
    while total < size - 64 * 1024:
        line = b'{"time": 1, ' + b", ".join(b'"f%d": 1' % (number + i) for i in range(4000)) + b"}\n"
        number += 4000
        lines.append(line)
        total += len(line)
    return b"".join(lines)


@pytest.mark.parametrize(
    ("name", "what", "content", "deadline", "most"),
    [pytest.param(*case[:5], marks=case[5], id=f"{case[0]}: {case[1]}") for case in CASES],
)
def test_the_worst_input_of_each_file_costs_a_bounded_time_and_memory(
    name, what, content, deadline, most, tmp_path, settings
):
    settings.GYMNOS_MAX_METRICS_MB = METRICS // MiB
    root = tmp_path / "trainings"
    folder = write_execution(root)
    (folder / name).write_bytes(content())
    spent = cost(lambda: read(folder, root), deadline, summary=problems)
    assert spent.raised is None
    assert spent.grown <= most, f"{what}: grew by {spent.grown / MiB:.0f} MiB"
    assert all(problem.startswith(f"{name}: ") for problem in spent.result)


def test_a_150_mb_one_line_log_is_read_at_its_head_and_tail_only(tmp_path):
    root = tmp_path / "trainings"
    folder = write_execution(root)
    one_line(folder / "execution.log", 150 * MiB, end=b"\n2019-04-08 06:16:47,376 - gymnosd - INFO - done\n")
    spent = cost(lambda: read(folder, root), 10, summary=lambda record: record.finished_at.isoformat())
    assert spent.raised is None
    assert spent.grown < 16 * MiB
    assert spent.result.startswith("2019-04-08T06:16:47")


def test_the_system_reader_reads_at_most_its_lines_from_the_tail(tmp_path):
    root = tmp_path / "trainings"
    folder = write_execution(root)
    lines = [json.dumps({"time": float(t), "memory_mb": float(t)}).encode() + b"\n" for t in range(400_000)]
    (folder / "system_metrics.jsonl").write_bytes(b"".join(lines))
    record = read(folder, root)
    assert record.problems == [
        "system_metrics.jsonl: has more than 300,000 lines to read; only its last 300,000 were read"
    ]
    assert record.extra["system"]["samples"] == 300_000
    assert record.extra["system"]["peak_memory_mb"] == 399_999.0


def test_metrics_json_costs_grow_linearly_with_its_size(tmp_path, settings):
    """At 1 and 8 MiB of floats (the worst shape): eight times the size, at most about eight times the cost."""
    settings.GYMNOS_MAX_METRICS_MB = 8
    root = tmp_path / "trainings"
    spent = {}
    for size in (MiB, 8 * MiB):
        folder = write_execution(root, name=f"run-{size}")
        (folder / "metrics.json").write_bytes(filled(b'{"metrics": {"loss": [', b"0.5,", b"0.5]}}", size))
        spent[size] = cost(lambda folder=folder: read(folder, root), 60)
    assert spent[8 * MiB].seconds < 8 * spent[MiB].seconds * 3 + 1  # quadratic would be 64 times
    assert spent[8 * MiB].grown < 8 * spent[MiB].grown * 2 + 16 * MiB


# --- the log tail: the pages', share links' and the API's reader ------------------------------


def test_the_log_tail_of_the_worst_logs_costs_one_chunk(tmp_path, settings):
    settings.GYMNOS_TRAININGS_ROOT = tmp_path
    folder = write_execution(tmp_path)
    execution = Execution(folder_path=str(folder))
    for content in (b"\n" * (64 * MiB), "é".encode() * (32 * MiB), b"\xff" * (64 * MiB)):
        (folder / "execution.log").write_bytes(content)
        for call in (lambda: logtail.tail(execution), lambda: logtail.read_from(execution, 12345)):
            spent = cost(call, 10, summary=lambda chunk: len(chunk["data"]))
            assert spent.raised is None
            assert spent.result <= logtail.CHUNK
            assert spent.grown < 16 * MiB


# --- fuzz ------------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)
NAMES = ["training_config.json", "metrics.json", "trackers.json", "curation.json", "evaluation.json"]
FUZZ = examples(
    max_examples=60,
    deadline=2000,  # ms per input: every reader is linear, and these inputs are small
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],  # one folder, rewritten
)


def _read_with(tmp_path, name, content):
    root = tmp_path / "trainings"
    folder = root / "boston_housing" / "executions" / "fuzzed"
    if not folder.exists():
        write_execution(root, name="fuzzed")
    (folder / name).write_bytes(content)
    record = read(folder, root)
    assert all(problem.startswith(f"{name}: ") for problem in record.problems), record.problems


@pytest.mark.parametrize("name", [*NAMES, "system_metrics.jsonl", "execution.log"])
@FUZZ
@given(content=st.binary(max_size=2000))
def test_no_bytes_in_a_file_make_sync_raise(tmp_path, name, content):
    _read_with(tmp_path, name, content)


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(document=JSON)
def test_no_json_shape_makes_sync_raise(tmp_path, name, document):
    _read_with(tmp_path, name, json.dumps(document).encode())


@FUZZ
@given(
    metrics=st.dictionaries(
        st.text(max_size=300),
        st.lists(st.one_of(st.floats(), st.integers(min_value=-(10**400), max_value=10**400), JSON), max_size=20)
        | JSON,
        max_size=5,
    )
)
def test_no_metrics_make_sync_raise(tmp_path, metrics):
    _read_with(tmp_path, "metrics.json", json.dumps({"metrics": metrics}).encode())


@FUZZ
@given(lines=st.lists(st.dictionaries(st.text(max_size=70), JSON, max_size=8) | JSON, max_size=30))
def test_no_system_lines_make_sync_raise(tmp_path, lines):
    _read_with(tmp_path, "system_metrics.jsonl", b"".join(json.dumps(line).encode() + b"\n" for line in lines))


@FUZZ
@given(content=st.binary(max_size=5000), offset=st.integers(min_value=-10, max_value=6000))
def test_the_log_tail_never_raises_and_never_gives_more_than_a_chunk(tmp_path, settings, content, offset):
    settings.GYMNOS_TRAININGS_ROOT = tmp_path
    folder = Path(tmp_path) / "run"
    os.makedirs(folder, exist_ok=True)
    (folder / "execution.log").write_bytes(content)
    execution = Execution(folder_path=str(folder))
    for chunk in (logtail.tail(execution, lines=3), logtail.read_from(execution, offset)):
        assert len(chunk["data"]) <= logtail.CHUNK
        assert 0 <= chunk["offset"] <= chunk["size"] == len(content)
