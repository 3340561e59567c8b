"""How soon an epoch reaches the pages: the live event stream against the 2 s polling, through ``manage.py up``.

Starts ``manage.py up --workers 2`` on a fresh var/ (embedded Redis, SQLite, uvicorn workers), queues two tiny
Boston runs whose epochs last about ``--pause`` seconds (``tests.hooks.pause`` at each epoch's start, so the end
of an epoch is followed at once by its log line and its store), and while they train:

- ``--clients`` stream clients (half on each run) read ``GET /api/executions/{id}/events`` as an EventSource
  would, each noting when every ``epoch`` event arrives;
- ``--pollers`` clients ask ``GET /api/executions/{id}`` every 2 s, as the pages did, noting when the epoch
  count grew.

The lag of an epoch is its arrival minus its end, read from its log line (``Epoch N ended: ...``, written by
``experiments.pipeline.hooks.log_epoch``, same clock: same machine). Epochs that ended before a client connected
(caught up on connect) are not counted. Also printed: the web processes' memory (RSS) per open stream.

    python -m bench.live [--clients 50] [--pollers 4] [--epochs 20] [--pause 1.0]

Goal (issue 24): p95 under 0.5 s on a 2-core machine while two runs train.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import requests

from bench.stack import start_up

ROOT = Path(__file__).resolve().parent.parent
EPOCH_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .* Epoch (\d+) ended:", re.MULTILINE)


def _config(epochs: int) -> dict[str, Any]:
    config = json.loads((ROOT / "examples" / "boston_housing.json").read_text())
    config["model"]["network"] = [{"type": "dense", "units": 8, "activation": "relu"}, {"type": "dense", "units": 1}]
    config["training"]["epochs"] = epochs
    config["training"]["callbacks"] = [
        {"type": "lambda_callback", "on_epoch_begin": "tests.hooks.pause"},
        {"type": "lambda_callback", "on_epoch_end": "experiments.pipeline.hooks.log_epoch"},
    ]
    config["tracking"]["trackers"] = []
    return config


def _stream(url: str, token: str, arrivals: dict[Any, float], opened: threading.Event) -> None:
    """One stream client: ``arrivals[epoch] = time it arrived``; ``opened`` once it holds a connection."""
    with requests.get(url, headers={"Authorization": f"Bearer {token}"}, stream=True, timeout=120) as response:
        arrivals["connected"] = time.time()
        opened.set()
        kind = None
        for raw in response.iter_lines():
            line = raw.decode()
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "epoch":
                arrivals[json.loads(line[6:])["epoch"]] = time.time()
            elif line.startswith("data: ") and kind == "end":
                return


def _poll(url: str, token: str, arrivals: dict[Any, float], stop: threading.Event) -> None:
    """One polling client, every 2 s: ``arrivals[epoch] = when the count first showed it``."""
    arrivals["connected"] = time.time()
    seen = 0
    while not stop.is_set():
        detail = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
        now = time.time()
        for epoch in range(seen + 1, detail["epochs"] + 1):
            arrivals[epoch] = now
        seen = max(seen, detail["epochs"])
        if detail["status"] not in ("queued", "running"):
            return
        stop.wait(2.0)


def _ends(server: str, token: str, pk: int) -> dict[int, float]:
    """Each epoch's end, from its log line."""
    text = requests.get(f"{server}/api/executions/{pk}/log?offset=0", headers={"Authorization": f"Bearer {token}"},
                        timeout=30).json()["data"]  # fmt: skip
    return {
        int(epoch): dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        for stamp, epoch in EPOCH_LINE.findall(text)
    }


def _lags(clients: list[tuple[int, dict[Any, float]]], ends: dict[int, dict[int, float]]) -> list[float]:
    return [
        arrived - ends[pk][epoch]
        for pk, arrivals in clients
        for epoch, arrived in arrivals.items()
        if epoch != "connected" and epoch in ends[pk] and ends[pk][epoch] > arrivals["connected"]
    ]


def _web_rss(up: subprocess.Popen[bytes]) -> int:
    processes = [
        child for child in psutil.Process(up.pid).children(recursive=True) if "gunicorn" in " ".join(child.cmdline())
    ]
    return sum(process.memory_info().rss for process in processes)


def _percentiles(lags: list[float]) -> str:
    if len(lags) < 2:
        return f"{len(lags)} epochs seen: too few"
    cuts = statistics.quantiles(lags, n=20)
    return f"p50 {statistics.median(lags) * 1000:.0f} ms, p95 {cuts[18] * 1000:.0f} ms ({len(lags)} epoch arrivals)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--pollers", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--pause", type=float, default=1.0)
    options = parser.parse_args()
    up = start_up("live", 2, options.pause)
    server = up.server
    config_file = up.work / "run.json"
    config_file.write_text(json.dumps(_config(options.epochs)))
    try:
        token = up.token()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        body = config_file.read_text()
        pks = [requests.post(f"{server}/api/executions", data=body, headers=headers, timeout=30).json()["id"]
               for _ in range(2)]  # fmt: skip
        time.sleep(2)
        before = _web_rss(up.process)
        streams: list[tuple[int, dict[Any, float]]] = []
        pollers: list[tuple[int, dict[Any, float]]] = []
        threads: list[threading.Thread] = []
        stop = threading.Event()
        for index in range(options.clients):
            pk, arrivals, opened = pks[index % 2], dict[Any, float](), threading.Event()
            streams.append((pk, arrivals))
            threads.append(threading.Thread(target=_stream, args=(f"{server}/api/executions/{pk}/events", token,
                                                                  arrivals, opened), daemon=True))  # fmt: skip
            threads[-1].start()
            opened.wait(30)
        time.sleep(2)
        during = _web_rss(up.process)
        for index in range(options.pollers):
            pk, arrivals = pks[index % 2], dict[Any, float]()
            pollers.append((pk, arrivals))
            threads.append(threading.Thread(target=_poll, args=(f"{server}/api/executions/{pk}", token, arrivals, stop),
                                            daemon=True))  # fmt: skip
            threads[-1].start()
        for thread in threads:
            thread.join(options.epochs * options.pause * 4 + 120)
        stop.set()
        ends = {pk: _ends(server, token, pk) for pk in pks}
    finally:
        up.stop()
    streamed, polled = _lags(streams, ends), _lags(pollers, ends)
    print(f"bench.live: 2 runs x {options.epochs} epochs (~{options.pause} s each), {options.clients} stream clients, "
          f"{options.pollers} polling clients, through manage.py up (2 uvicorn workers)")  # fmt: skip
    print(f"  stream  (pushed):       {_percentiles(streamed)}")
    print(f"  polling (every 2 s):    {_percentiles(polled)}")
    if streamed and polled:
        print(f"  polling p50 / stream p50: {statistics.median(polled) / max(statistics.median(streamed), 1e-6):.1f}x")
    print(
        f"  web processes' memory: {before / 2**20:.0f} MB before, {during / 2**20:.0f} MB with "
        f"{options.clients} streams open: {(during - before) / max(options.clients, 1) / 1024:.0f} KB a stream"
    )
    goal = streamed and statistics.quantiles(streamed, n=20)[18] < 0.5
    print(f"  goal p95 < 500 ms: {'met' if goal else 'NOT met'}")


if __name__ == "__main__":
    main()
