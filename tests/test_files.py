"""The one bounded reader of run files (experiments.files), and what reads through it: the log tail, sync, the horse.

Every file of a run folder is read inside the folder, as a regular file, and at most the bytes its
reader states: a 150 MB log answers with 256 KiB, a pipe named metrics.json does not block sync.
"""

import datetime as dt
import json
import os
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from experiments import files, logtail
from experiments.index.listing import Folder, list_folder
from experiments.index.reader import read_folder
from experiments.models import Execution, MetricHistory, ShareLink, Status
from experiments.pipeline.trainer import ExecutionResult
from tests.folders import SEED_METRICS, permalink, write_execution

pytestmark = pytest.mark.django_db

MiB = 1 << 20


def one_line_log(path, size=150 * MiB, end=b"...and the last words of the one line"):
    """A log of ``size`` bytes and no line end (sparse: made in a moment, takes no disk)."""
    with open(path, "wb") as log:
        log.truncate(size - len(end))
        log.seek(size - len(end))
        log.write(end)


def measured(call):
    """``(result, seconds, peak bytes Python allocated)`` of ``call()``."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = call()
        return result, time.perf_counter() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --- the reader itself ------------------------------------------------------------------------


def test_a_run_file_never_gives_more_than_its_bound(tmp_path):
    (tmp_path / "execution.log").write_bytes(b"0123456789\n" * 100)
    with files.open_file(tmp_path, "execution.log", limit=25) as log:
        assert log.size == 1100
        assert log.readline() == b"0123456789\n"
        assert log.read() == b"0123456789\n012"
        assert log.cut is True
        assert log.read() == b""
        assert log.readline() == b""


def test_a_read_the_bound_does_not_shorten_is_not_cut(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"short\n")
    with files.open_file(tmp_path, "a.txt", limit=100) as handle:
        assert handle.read(1000) == b"short\n"
        assert handle.cut is False


def test_a_file_over_its_bound_is_refused_whole_and_not_read(tmp_path):
    one_line_log(tmp_path / "metrics.json", size=64 * MiB)

    def refused():
        with pytest.raises(files.TooLarge, match=r"^is 67,108,864 bytes; at most 1,024 are read$"):
            files.read_file(tmp_path, "metrics.json", limit=1024)

    _, _, peak = measured(refused)
    assert peak < MiB


def test_links_out_of_the_folder_and_odd_paths_are_refused(tmp_path):
    folder, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    (elsewhere / "secret.json").write_text("{}")
    (folder / "model.h5").write_bytes(b"model")
    os.symlink(elsewhere / "secret.json", folder / "metrics.json")
    os.symlink(folder / "model.h5", folder / "alias.h5")
    assert files.read_file(folder, "alias.h5", limit=10) == b"model"  # a link that stays inside is read
    with pytest.raises(files.Refused, match="is a symlink to .*/elsewhere/secret.json, outside the run's folder"):
        files.read_file(folder, "metrics.json", limit=10)
    for odd in ("../elsewhere/secret.json", "/etc/passwd", "", ".", "a/../model.h5", "a\\b", "nul\x00"):
        with pytest.raises(files.Refused, match="is not a plain path inside the run's folder"):
            files.read_file(folder, odd, limit=10)
    with pytest.raises(FileNotFoundError):
        files.read_file(folder, "absent.json", limit=10)


def test_a_pipe_or_a_folder_is_refused_without_waiting(tmp_path):
    os.mkfifo(tmp_path / "metrics.json")
    (tmp_path / "callbacks").mkdir()
    for name in ("metrics.json", "callbacks"):
        with pytest.raises(files.Refused, match=r"is not a regular file \(a folder, a pipe or a device\)"):
            files.read_file(tmp_path, name, limit=10)


# --- the log tail (pages, share links, the API) -----------------------------------------------


@pytest.fixture
def huge_log(trained):
    one_line_log(Path(trained.folder_path) / "execution.log")
    return trained


def _visitor_of(owner_client, execution):
    owner_client.post(f"/executions/{execution.pk}/share/", {})
    return Client(), f"/s/{ShareLink.objects.latest('created_at').token}/"


def test_a_150_mb_one_line_log_answers_with_at_most_256_kib_and_says_it_cut(owner_client, huge_log):
    owner_client.get(f"/executions/{huge_log.pk}/")  # the first request's start-up is not the log's cost
    response, seconds, peak = measured(lambda: owner_client.get(f"/executions/{huge_log.pk}/log.json"))
    chunk = response.json()
    assert len(chunk["data"].encode()) <= 256 * 1024
    assert chunk["data"].endswith("...and the last words of the one line")
    assert chunk["cut"] is True
    assert chunk["offset"] == chunk["size"] == 150 * MiB
    assert peak < 16 * MiB  # the 256 KiB read, decoded and sent as JSON; not the 150 MB
    assert seconds < 2


def test_a_share_visitor_and_the_api_get_the_same_bound(owner_client, huge_log):
    visitor, url = _visitor_of(owner_client, huge_log)
    for client, path in ((visitor, url + "log.json"), (owner_client, f"/api/executions/{huge_log.pk}/log?offset=0")):
        response, _, peak = measured(lambda client=client, path=path: client.get(path))
        assert response.status_code == 200
        assert len(response.json()["data"].encode()) <= 256 * 1024
        assert peak < 16 * MiB


def test_polling_a_huge_log_walks_it_256_kib_at_a_time(huge_log):
    first = logtail.read_from(huge_log, 0)
    assert first["offset"] == 256 * 1024
    assert first["cut"] is False  # nothing lost: the next poll asks from there
    assert logtail.read_from(huge_log, first["offset"])["offset"] == 512 * 1024


def test_long_lines_leave_whole_lines_within_the_bound(trained):
    line = "x" * 2047 + "\n"
    (Path(trained.folder_path) / "execution.log").write_text(line * 300)  # 600 KiB, 300 lines
    chunk = logtail.tail(trained)
    assert len(chunk["data"].encode()) <= 256 * 1024
    assert chunk["data"] == line * 127  # as many whole lines as fit (256 KiB less the line cut in two)
    assert chunk["cut"] is False


def test_a_log_that_links_out_of_the_run_folder_is_not_read(owner_client, trained, tmp_path):
    (tmp_path / "secret.log").write_text("secret\n")
    log = Path(trained.folder_path) / "execution.log"
    log.unlink()
    log.symlink_to(tmp_path / "secret.log")
    chunk = owner_client.get(f"/executions/{trained.pk}/log.json").json()
    assert chunk["data"] == ""
    assert chunk["unavailable"] == "the log is not a file inside this run's folder"


# --- sync's reading ---------------------------------------------------------------------------


def _read(folder, root):
    folder = Folder(folder.parent.parent.name, folder.name, str(folder))
    return read_folder(folder, list_folder(folder, str(root)), dt.datetime.now(dt.UTC), dt.timedelta(minutes=30))


def test_a_pipe_named_metrics_json_does_not_block_sync(root):
    folder = write_execution(root, metrics=None)
    os.mkfifo(folder / "metrics.json")
    found: dict[str, Any] = {}
    reader = threading.Thread(target=lambda: found.setdefault("record", _read(folder, root)), daemon=True)
    reader.start()
    reader.join(timeout=10)
    if reader.is_alive():  # blocked on the pipe: a writer lets it go, so the test process ends
        with open(folder / "metrics.json", "wb"):
            pass
        reader.join(timeout=10)
        pytest.fail("sync waited on a pipe named metrics.json")
    record = found["record"]
    assert record.status == Status.FAILED
    assert "metrics.json: is not a regular file (a folder, a pipe or a device); not read" in record.error


def _indexed_then_replaced(root, metrics):
    """A run indexed from a good metrics.json, whose file is then replaced by ``metrics``, synced again."""
    from experiments.index.sync import sync_trainings

    folder = write_execution(root)
    sync_trainings(root)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    report = sync_trainings(root)
    return report, Execution.objects.get()


def test_a_metrics_json_over_its_bound_is_the_folders_error_and_loses_nothing_indexed(root, settings):
    settings.GYMNOS_MAX_METRICS_MB = 1
    big = {"metrics": {"loss": [1.5] * 400_000}}  # 2 MB of JSON
    size = len(json.dumps(big))
    report, execution = _indexed_then_replaced(root, big)
    assert report.errors == 1
    assert execution.status == Status.FAILED
    assert execution.error == (
        f"metrics.json: is {size:,} bytes; at most 1,048,576 are read (GYMNOS_MAX_METRICS_MB); not indexed"
    )
    assert execution.epochs == 4  # what the last readable metrics.json said
    assert len(MetricHistory.objects.get(execution=execution, name="loss").values) == 4


def test_more_epochs_than_gymnos_max_epochs_is_the_folders_error_and_loses_nothing_indexed(root, settings):
    settings.GYMNOS_MAX_EPOCHS = 10
    report, execution = _indexed_then_replaced(root, {"metrics": {"loss": [1.0] * 11, "val_loss": [2.0] * 3}})
    assert report.errors == 1
    assert execution.status == Status.FAILED
    assert execution.error == "metrics.json: has 11 epochs; at most 10 are read (GYMNOS_MAX_EPOCHS); not indexed"
    assert execution.epochs == 4
    assert MetricHistory.objects.get(execution=execution, name="loss").values == SEED_METRICS["metrics"]["loss"]


def test_trackers_json_is_read_within_its_bound(root):
    folder = write_execution(root)
    text = json.dumps({"mlflow": {"run_id": "x" * 70_000}})
    (folder / "trackers.json").write_text(text)
    record = _read(folder, root)
    assert f"trackers.json: is {len(text):,} bytes; at most 65,536 are read; not indexed" in record.error
    assert record.trackers == {}


# --- the work horse ---------------------------------------------------------------------------


def test_the_traceback_of_a_failed_run_is_found_without_reading_its_whole_log(tmp_path):
    from experiments.jobs.horse import _error_with_traceback

    one_line_log(tmp_path / "execution.log", size=64 * MiB, end=b"\nTraceback (most recent call last):\n  boom\n")
    result = ExecutionResult(path=tmp_path, succeeded=False, error="RuntimeError: boom")
    text, _, peak = measured(lambda: _error_with_traceback(result))
    assert text == "RuntimeError: boom\n\nTraceback (most recent call last):\n  boom"
    assert peak < 4 * MiB


def test_the_page_still_offers_the_huge_log_for_download(owner_client, huge_log):
    response = owner_client.get(permalink(huge_log) + "files/execution.log")
    assert response.status_code == 200
    assert int(response["Content-Length"]) == 150 * MiB
    response.close()
