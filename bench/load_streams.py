"""The streams' half of ``bench/load.py`` (issue 24): ``--streams N`` alone, and ``--beside N`` with the teammates.

Run through ``python -m bench.load``; its docstring says what each prints.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.stack import start_up, wait_for

ROOT = Path(__file__).resolve().parent.parent

# --- the streams' case ------------------------------------------------------------------------------


async def _hold_stream(session: Any, url: str, arrivals: dict[Any, float], failures: list[str]) -> None:
    """One client holding a run page's stream: ``arrivals[epoch]`` = when that epoch's event came."""
    kind = None
    try:
        async with session.get(url) as response:
            if response.status != 200:
                failures.append(f"HTTP {response.status}")
                return
            arrivals["connected"] = time.time()
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "epoch":
                    arrivals[json.loads(line[6:])["epoch"]] = time.time()
                elif line.startswith("data: ") and kind in ("end", "fallback"):
                    return
    except Exception as exc:  # noqa: BLE001 - counted and printed, as the teammates' errors are
        failures.append(f"{type(exc).__name__}: {exc}")


async def _hold_streams(
    url: str, token: str, clients: int, seconds: float, opened: Any
) -> tuple[list[dict[Any, float]], list[str]]:
    """``clients`` streams held for ``seconds`` (``opened()`` is called once every one has connected or failed)."""
    import asyncio

    import aiohttp

    connector = aiohttp.TCPConnector(limit=0)  # one connection a client, as browsers on as many machines
    timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
    headers = {"Authorization": f"Bearer {token}"}
    arrivals: list[dict[Any, float]] = [{} for _ in range(clients)]
    failures: list[str] = []
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:
        tasks = [asyncio.create_task(_hold_stream(session, url, arrived, failures)) for arrived in arrivals]
        deadline = time.monotonic() + 60
        while sum(1 for a in arrivals if "connected" in a) + len(failures) < clients and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.get_running_loop().run_in_executor(None, opened)
        done, pending = await asyncio.wait(tasks, timeout=seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    cut = sum(1 for task in done if "connected" in arrivals[tasks.index(task)])  # ended early: cut, or the run ended
    if cut:
        print(f"  {cut} streams ended before the measurement did (the run ended, or they were cut)")
    return arrivals, failures


def _web_processes(up: subprocess.Popen[bytes]) -> tuple[int, int]:
    """The web processes' (gunicorn's and its uvicorn workers') memory (RSS) and threads."""
    import psutil

    found = [
        child for child in psutil.Process(up.pid).children(recursive=True) if "gunicorn" in " ".join(child.cmdline())
    ]
    return sum(p.memory_info().rss for p in found), sum(p.num_threads() for p in found)


def streams_case(args: argparse.Namespace) -> None:
    import asyncio

    import requests

    from bench.live import _config, _ends, _percentiles

    up = start_up("load-streams", 1, args.pause)
    server = up.server
    config_file = up.work / "run.json"
    config_file.write_text(json.dumps(_config(int(args.seconds / args.pause) + 60)))  # trains past the measurement
    figures: dict[str, tuple[int, int]] = {}
    try:
        token = up.token()
        headers = {"Authorization": f"Bearer {token}"}
        pk = requests.post(f"{server}/api/executions", data=config_file.read_text(), timeout=30,
                           headers={**headers, "Content-Type": "application/json"}).json()["id"]  # fmt: skip
        wait_for(
            lambda: requests.get(f"{server}/api/executions/{pk}", headers=headers, timeout=30).json()["epochs"] >= 1,
            "the run training",
        )
        figures["before"] = _web_processes(up.process)

        def opened() -> None:
            time.sleep(2)
            figures["during"] = _web_processes(up.process)

        url = f"{server}/api/executions/{pk}/events"
        arrivals, failures = asyncio.run(_hold_streams(url, token, args.streams, args.seconds, opened))
        ends = _ends(server, token, pk)
    finally:
        up.stop()
    lags = [
        arrived - ends[epoch]
        for client in arrivals
        for epoch, arrived in client.items()
        if epoch != "connected" and epoch in ends and ends[epoch] > client["connected"]
    ]
    (rss_before, threads_before), (rss_during, threads_during) = figures["before"], figures["during"]
    print(
        f"bench.load --streams: {args.streams} clients holding a run page's stream for {args.seconds} s while "
        f"one run trains (epochs of ~{args.pause} s), through manage.py up (uvicorn workers under gunicorn)"
    )
    print(
        f"  clients that could not open or were cut: {len(failures)}" + (f" (first: {failures[0]})" if failures else "")
    )
    print(f"  web processes' memory: {rss_before / 2**20:.0f} MB before, {rss_during / 2**20:.0f} MB with the streams "
          f"open: {(rss_during - rss_before) / max(args.streams, 1) / 1024:.0f} KB a stream")  # fmt: skip
    print(f"  web processes' threads: {threads_before} before, {threads_during} with the streams open")
    print(f"  epoch end -> event at the client: {_percentiles(lags)}")


# --- streams beside the teammates (``--beside N``) ---------------------------------------------------


def hold_beside(args: argparse.Namespace, up: subprocess.Popen[bytes], host: str, token: str, pk: int) -> Any:
    """A child holding ``args.beside`` streams of run ``pk`` (asyncio there, gevent here) for the teammates'
    minute; returns it once every stream has opened, having printed the web processes' memory and threads."""
    before = _web_processes(up)
    holder = subprocess.Popen(
        [sys.executable, "-m", "bench.load", "--hold", f"{host}/api/executions/{pk}/events", f"--token={token}",
         "--streams", str(args.beside), "--seconds", str(args.seconds + 15)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None
    line = holder.stdout.readline()  # "opened": every stream connected or failed
    if not line.startswith("opened"):
        raise SystemExit(f"the stream clients did not start: {line!r}")
    time.sleep(2)
    during = _web_processes(up)
    per_stream = (during[0] - before[0]) / args.beside / 1024
    print(
        f"{args.beside} streams of run {pk} open beside the teammates: web processes' memory "
        f"{before[0] / 2**20:.0f} MB before, {during[0] / 2**20:.0f} MB with them ({per_stream:.0f} KB a stream); "
        f"threads {before[1]} before, {during[1]} with them"
    )
    return holder


def report_beside(args: argparse.Namespace, holder: Any) -> bool:
    """The stream clients' end of it: how many could not open or were cut, and the events they received."""
    out, _ = holder.communicate(timeout=120)
    summary = json.loads(out.strip().splitlines()[-1])
    print(
        f"streams beside: {summary['clients']} clients, {summary['failures']} could not open or were cut"
        + (f" (first: {summary['first_failure']})" if summary["failures"] else "")
        + f", {summary['epochs']} epoch events received"
    )
    return summary["failures"] == 0


def hold(args: argparse.Namespace) -> None:
    """The child of ``--beside``: prints "opened" once the streams are open, then a JSON summary at the end."""
    import asyncio

    def opened() -> None:
        print("opened", flush=True)

    arrivals, failures = asyncio.run(_hold_streams(args.hold, args.token, args.streams, args.seconds, opened))
    epochs = sum(1 for client in arrivals for key in client if key != "connected")
    first = failures[0] if failures else ""
    print(json.dumps({"clients": args.streams, "failures": len(failures), "first_failure": first, "epochs": epochs}))
