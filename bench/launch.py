"""How fast a launch answers, and how fast `train` reports a config's structural mistake.

Starts `manage.py up --workers 0` on a fresh var/ (SQLite, the embedded Redis, gunicorn), takes an API
token, and the moment `up` says it is up, launches the Boston Housing example through the API: the
first launch after start. Then launches it N more times (each one's model built in the capped child
process), and for a baseline in the same run, asks N times for one execution's detail (a request that
builds nothing). Last, times `manage.py train` on a config with an unknown key and a wrong type, and
checks that it did not import TensorFlow.

    python -m bench.launch [--launches 30] [--trains 5]

Goals (hardening issue): launch median under 300 ms, the first launch after start under 1 s, and
`train` reporting a structural error in under 2 s without importing TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.stack import free_port, fresh

ROOT = Path(__file__).resolve().parent.parent


def timed_request(url: str, token: str, body: bytes | None = None) -> tuple[float, int]:
    request = urllib.request.Request(url, data=body, headers={"Authorization": f"Bearer {token}"})
    if body is not None:
        request.add_header("Content-Type", "application/json")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    return time.perf_counter() - started, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=30)
    parser.add_argument("--trains", type=int, default=5)
    args = parser.parse_args()

    work, env = fresh("launch")
    env.update(PYTHONUNBUFFERED="1")
    port = free_port()
    log = open(work / "up.log", "wb")  # up writes to it until the end: not a with block
    up = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "up", "--workers", "0", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while b"Log in as:" not in (work / "up.log").read_bytes():
            if up.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("up did not start:\n" + (work / "up.log").read_text()[-3000:])
            time.sleep(0.05)
        announced = time.perf_counter()
        token = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "api_token", "admin"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]  # fmt: skip
        config = json.loads((ROOT / "examples" / "boston_housing.json").read_text())
        body = json.dumps(config).encode()
        base = f"http://127.0.0.1:{port}/api/executions"

        first, status = timed_request(base, token, body)
        assert status == 201, status
        since_up = time.perf_counter() - announced
        launches, details = [], []
        for _ in range(args.launches):
            seconds, status = timed_request(base, token, body)
            assert status == 201, status
            launches.append(seconds)
            seconds, status = timed_request(f"{base}/1", token)
            assert status == 200, status
            details.append(seconds)
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(60)
        log.close()

    bad = work / "bad.json"
    broken = json.loads((ROOT / "examples" / "boston_housing.json").read_text())
    broken["training"]["epoch"] = 3
    broken["training"]["batch_size"] = "32"
    bad.write_text(json.dumps(broken))
    trains, imported = [], False
    for _ in range(args.trains):
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-X", "importtime", str(ROOT / "manage.py"), "train", str(bad)],
            cwd=work, env=env, capture_output=True, text=True,
        )  # fmt: skip
        trains.append(time.perf_counter() - started)
        assert result.returncode == 2, result.stderr[-2000:]
        assert "training.epoch: unknown key" in result.stderr, result.stderr[-2000:]
        imported |= bool(re.search(r"\| +tensorflow$", result.stderr, re.MULTILINE))

    def ms(values: list[float], q: float) -> float:
        return 1000 * statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else 1000 * values[0]

    median, detail = statistics.median(launches), statistics.median(details)
    lines = [
        "launches through the API, each model built in the capped child (SQLite, embedded Redis, gunicorn):",
        f"  first launch after up said it was up  {1000 * first:7.1f} ms"
        f"  (sent {since_up - first:.2f} s after)  goal < 1000 ms",
        f"  launch, median of {args.launches:<3}                {1000 * median:7.1f} ms  p95 {ms(launches, 95):7.1f} ms"
        "  goal < 300 ms",
        f"  baseline: execution detail, median     {1000 * detail:7.1f} ms  (launch / detail = {median / detail:.1f}x)",
        f"manage.py train on a config with an unknown key and a wrong type ({args.trains} runs):",
        f"  exit 2 with both problems, median      {statistics.median(trains):7.2f} s   goal < 2 s;"
        f" TensorFlow imported: {'yes' if imported else 'no'}",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
