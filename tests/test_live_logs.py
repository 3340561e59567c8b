"""A run's log lines as live events (``experiments.live.logs``), published to a real Redis as a run logs them."""

import json
import logging
import time

import pytest
import redis

from experiments import live
from experiments.live.logs import LogBatcher
from experiments.pipeline.execution import ExecutionLog
from tests.workers import REDIS_URL, queues_at


@pytest.fixture
def channel(settings):
    settings.RQ_QUEUES = queues_at()
    pubsub = redis.Redis.from_url(REDIS_URL).pubsub()
    pubsub.subscribe(live.run_channel(424242))
    pubsub.get_message(timeout=5)  # the subscription's confirmation
    yield pubsub
    pubsub.close()


def events(pubsub, seconds=5.0):
    found, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if message is not None:
            found.append(json.loads(message["data"]))
        elif found:
            return found
    return found


def test_each_batch_is_the_logs_own_bytes_and_ends_where_the_file_does(channel, tmp_path):
    lines = LogBatcher(424242, every=3600).start()  # no batch by time: only the flushes below send
    try:
        with ExecutionLog() as run_log:
            logger = logging.getLogger("gymnosd.Trainer")
            logger.info("before the folder exists")
            run_log.attach(tmp_path)
            logger.info("Epoch 1 ended: loss=0.5 — ünïcode")
            lines.flush()
            first = events(channel)
            logger.info("Epoch 2 ended: loss=0.4")
            lines.flush()
            second = events(channel)
    finally:
        lines.stop()
    log = (tmp_path / "execution.log").read_bytes()
    assert [event["kind"] for event in first + second] == ["log", "log"]
    (one,), (two,) = first, second
    assert one["text"].encode() == log[: one["end"]]  # both lines, exactly as the file holds them
    assert "before the folder exists" in one["text"]
    assert "ünïcode" in one["text"]
    assert two["end"] == len(log)
    assert two["text"].encode() == log[one["end"] : two["end"]]  # it starts where the first ended


def test_publishing_without_redis_neither_raises_nor_stops_the_log(settings, tmp_path, caplog, monkeypatch):
    settings.RQ_QUEUES = queues_at("redis://127.0.0.1:1/0?socket_connect_timeout=1")
    monkeypatch.setattr(live, "_publisher", live._Publisher())
    lines = LogBatcher(424242, every=0).start()
    try:
        with ExecutionLog() as run_log:
            run_log.attach(tmp_path)
            for epoch in range(3):
                logging.getLogger("gymnosd.Trainer").info(f"Epoch {epoch + 1} ended")
    finally:
        lines.stop()
    assert (tmp_path / "execution.log").read_text().count("ended") == 3
    assert sum("not published" in record.getMessage() for record in caplog.records) == 1
