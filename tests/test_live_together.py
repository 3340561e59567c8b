"""A stream sends the messages waiting for it in one write (``experiments.views.events._together``): with 200 streams
open, each write is the web process's event loop's time, which the pages' threads wait for (bench/load.py --beside).

Driven directly on a hub's listener (no Redis: the messages are handed to it as the hub's reader hands them)."""

import asyncio
import json

from django.test import RequestFactory

from experiments import live
from experiments.live.hub import Gone, Hub, Listener, Message
from experiments.models import Execution
from experiments.views import events


def source():
    return events.Source(RequestFactory().get("/executions/7/events"), Execution(pk=7), None)


def message(number):
    return Message(live.run_channel(7), json.dumps({"kind": live.LOG, "text": f"line {number}\n", "end": number}))


def sent(chunk):
    """The events in a chunk, as (event, data) in order."""
    found = []
    for block in chunk.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            found.append((lines["event"], json.loads(lines["data"])))
    return found


def together(listener, first, ended=None):
    return asyncio.run(events._together(source(), listener, first, ended or [False]))


def test_the_messages_waiting_behind_one_go_out_with_it_in_one_write_in_order():
    listener = Listener(Hub("redis://unused"), ["c"], 100)
    for number in range(1, 5):
        assert listener._offer(message(number))
    chunk = together(listener, message(0))
    assert [data["text"] for _, data in sent(chunk)] == [f"line {n}\n" for n in range(5)]
    assert asyncio.run(listener.next(0)) is None  # all taken


def test_one_write_takes_at_most_sent_together_and_the_rest_go_in_the_next():
    listener = Listener(Hub("redis://unused"), ["c"], 500)
    for number in range(1, events.SENT_TOGETHER + 10):
        listener._offer(message(number))
    first = sent(together(listener, message(0)))
    assert len(first) == events.SENT_TOGETHER
    second = sent(together(listener, asyncio.run(listener.next(0))))
    assert [data["end"] for _, data in first + second] == list(range(events.SENT_TOGETHER + 10))


def test_a_listener_that_ended_meanwhile_still_sends_what_it_took_then_raises_on_its_next_wait():
    listener = Listener(Hub("redis://unused"), ["c"], 500)
    listener._offer(message(1))
    listener._end("Redis went away")
    chunk = together(listener, message(0))
    assert [data["end"] for _, data in sent(chunk)] == [0]
    try:
        asyncio.run(listener.next(0))
    except Gone as gone:
        assert "Redis went away" in str(gone)
    else:
        raise AssertionError("the listener did not say it was gone")
