"""Reading system_metrics.jsonl: complete lines only, bad lines counted, long files thinned evenly, bounded reads."""

import io
import json

from experiments.system import reading
from experiments.system.reading import read, read_file


def jsonl(*lines):
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


HEADER = {"time": 0.0, "started_at": 1764412345.0, "interval": 5.0}


def sample(t, **fields):
    return {"time": t, "cpu_percent": 90.0, "memory_mb": 600.0 + t, **fields}


def read_bytes(data, offset=0):
    return read(io.BytesIO(data), len(data), offset)


def test_samples_epoch_ends_and_the_header_are_told_apart():
    series = read_bytes(jsonl(HEADER, sample(5), {"time": 6.5, "epoch_end": 1}, sample(10, system_cpu_percent=40)))
    assert series.time == [5, 10]
    assert series.interval == 5.0
    assert series.started_at == 1764412345.0
    assert series.fields == {"cpu_percent": [90.0, 90.0], "memory_mb": [605.0, 610.0], "system_cpu_percent": [None, 40]}
    assert series.epoch_ends == [6.5]
    assert series.summary() == {
        "samples": 2,
        "duration_s": 10,
        "interval_s": 5.0,
        "peak_memory_mb": 610.0,
        "mean_cpu_percent": 90.0,
        "mean_system_cpu_percent": 40.0,
    }
    assert series.problems() == []


def test_a_truncated_last_line_is_not_read_and_the_offset_stops_before_it():
    whole = jsonl(HEADER, sample(5))
    series = read_bytes(whole + b'{"time": 10.0, "cpu_per')
    assert series.time == [5]
    assert series.problems() == []
    assert series.offset == len(whole)
    # Once the line is complete, reading on from the offset finds just it.
    more = read_bytes(whole + jsonl(sample(10)), offset=series.offset)
    assert more.time == [10]
    assert more.start == len(whole)


def test_lines_that_are_not_samples_are_skipped_and_counted():
    data = jsonl(HEADER, sample(5)) + b"not json\n[1, 2]\n" + jsonl({"cpu_percent": 3}, sample(10, **{"Bad Name": 1}))
    data += b"[" * 100_000 + b"\n"  # nested past the parser's recursion limit
    series = read_bytes(data)
    assert series.time == [5, 10]
    assert series.problems() == [
        "5 lines are not JSON objects of numbers with a time (first at line 3); skipped",
    ]


def test_non_numbers_are_gaps_and_do_not_count_in_the_summary():
    series = read_bytes(jsonl(sample(5, cpu_percent="high"), sample(10, cpu_percent=float("nan")), sample(15)))
    assert series.fields["cpu_percent"] == [None, None, 90.0]
    assert series.summary()["mean_cpu_percent"] == 90.0


def test_gpu_figures_sum_up_across_gpus():
    series = read_bytes(
        jsonl(
            sample(5, gpu_0_utilization_percent=90, gpu_1_utilization_percent=10, gpu_0_memory_used_mb=1000),
            sample(10, gpu_0_utilization_percent=70, gpu_1_utilization_percent=30, gpu_0_memory_used_mb=3000),
        )
    )
    summary = series.summary()
    assert summary["mean_gpu_percent"] == 50.0
    assert summary["peak_gpu_memory_mb"] == 3000


def test_a_long_run_is_thinned_evenly_and_the_summary_counts_every_sample(monkeypatch):
    monkeypatch.setattr(reading, "MAX_POINTS", 100)
    series = read_bytes(jsonl(*(sample(t, memory_mb=float(t)) for t in range(1, 1001))))
    assert series.samples == 1000
    assert len(series.time) <= 100
    assert series.stride == 16
    steps = {b - a for a, b in zip(series.time, series.time[1:], strict=False)}
    assert steps == {16}  # evenly spaced over the whole run
    assert series.summary()["peak_memory_mb"] == 1000.0  # the last sample, though not kept


def test_too_many_fields_are_left_out_and_said_so(monkeypatch):
    monkeypatch.setattr(reading, "MAX_FIELDS", 3)
    series = read_bytes(jsonl(sample(5, a_one=1, b_two=2, c_three=3)))
    assert len(series.fields) == 3
    assert series.problems() == ["has more than 3 fields; left out: b_two, c_three"]


def test_an_overlong_line_is_skipped_in_bounded_chunks(monkeypatch):
    monkeypatch.setattr(reading, "MAX_LINE_BYTES", 200)
    data = jsonl(sample(5)) + b'{"time": 6, "x": "' + b"y" * 5000 + b'"}\n' + jsonl(sample(10))
    series = read_bytes(data)
    assert series.time == [5, 10]
    assert series.bad_lines == 1
    assert series.offset == len(data)


def test_a_huge_file_is_read_from_its_tail(monkeypatch):
    monkeypatch.setattr(reading, "MAX_READ_BYTES", 2000)
    data = jsonl(*(sample(t) for t in range(1, 200)))
    series = read_bytes(data)
    assert 0 < len(series.time) < 40
    assert series.time[-1] == 199
    assert series.problems()[0].endswith("only its last 2,000 were read")


def test_an_offset_past_the_end_reads_the_whole_file_again(tmp_path):
    path = tmp_path / "system_metrics.jsonl"
    path.write_bytes(jsonl(HEADER, sample(5)))
    series = read_file(tmp_path, offset=10_000)
    assert series.start == 0
    assert series.time == [5]
