"""The dashboard under a team's load while runs train: locust, headless, in this script.

Fills a PostgreSQL database of its own with 10,000 runs (``bench.dashboard``'s fill: 4 metrics x 100
epochs each), starts ``manage.py up`` on it (gunicorn, the embedded Redis, two workers) with two runs
of the Boston Housing example queued, waits until both train, then lets 50 simulated teammates browse
for a minute: the experiments list, the experiment page (sorted, paged, filtered by a query), run pages
(10 s on each, asking what the page's script asks: its log once, then a training run's event stream held
open, whose opening counts as a request), comparisons, and the JSON API. Each teammate waits 1-5 s between
pages. Prints requests/s, p50/p95/p99 and the errors, overall and per page.

    python -m bench.load [--runs 10000] [--users 50] [--seconds 60] [--database-url postgres://...]

``--polling``: the run pages poll their data and log every 2 s instead (what a page does when its stream cannot
open, and what every run page did before issue 24).

Goal (hardening issue): no errors, p95 under 200 ms.

``--streams N`` is the streams' case instead (issue 24): ``manage.py up`` on a fresh var/ (embedded Redis,
SQLite), one run training (epochs of ``--pause`` s), and N clients each holding its run page's stream (``GET
/api/executions/{id}/events``, async: aiohttp, one task a client) for ``--seconds``. Prints the clients that could
not open or were cut, the web processes' memory and threads before and with the N streams open (per stream), and
the delay from each epoch's end (its log line) to its event at each client, p50/p95 (``bench.live``'s measure).

    python -m bench.load --streams 200 [--seconds 60] [--pause 1.0]

``--beside N`` adds N such stream clients to the teammates' case (in a child process: asyncio there, locust's
gevent here), on one of the two training runs, open before the teammates start and held until they stop: the
pages' figures and goal as above, the web processes' memory and threads before and with the streams open, and
the clients that could not open or were cut (goal: none).

    python -m bench.load --beside 200
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from bench.load_streams import hold, hold_beside, report_beside, streams_case
from bench.stack import free_port, fresh

if TYPE_CHECKING:
    from locust import HttpUser
    from locust.clients import HttpSession
    from locust.stats import RequestStats

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "gymnos_bench_load"
TRAINING_EPOCHS = 400  # long enough to train through the whole measurement


# --- the fill, in a child process (Django there; locust's gevent patching here) ------------------


def fill(args: argparse.Namespace) -> None:
    """Create and fill the database; print what the teammates need as one JSON line."""
    from bench.dashboard import EXPERIMENT, fill_gymnos, setup_django

    workdir = Path(tempfile.mkdtemp(prefix="gymnos-bench-load-fill-"))
    connection = setup_django(args.database_url, workdir, args.database_name)
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    started = time.perf_counter()
    ids = fill_gymnos(args.runs, 100, 7)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"filled {len(ids):,} runs in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    from experiments.models import Execution

    user = User.objects.create_superuser("bench", password="bench-load-password")
    sessions = []
    for _ in range(args.users):  # each teammate already logged in (a login's password hash is not the page's cost)
        session = SessionStore()
        session.update(
            {
                SESSION_KEY: str(user.pk),
                BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
                HASH_SESSION_KEY: user.get_session_auth_hash(),
            }
        )
        session.create()
        sessions.append(session.session_key)
    token_file = workdir / "token"
    with open(token_file, "w") as out:
        call_command("api_token", "bench", stdout=out)
    runs = list(
        Execution.objects.filter(experiment__name=EXPERIMENT)
        .order_by("?")[:500]
        .values("pk", "folder_name", "experiment__name")
    )
    print(
        json.dumps(
            {
                "sessions": sessions,
                "token": token_file.read_text().strip().splitlines()[-1],
                "experiment": EXPERIMENT,
                "runs": runs,
                "database": connection.settings_dict["NAME"],
            }
        )
    )


# --- the stack ----------------------------------------------------------------------------------


def start_stack(database_url: str) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    work, env = fresh("load")
    config = json.loads((ROOT / "examples" / "boston_housing.json").read_text())
    config["training"]["epochs"] = TRAINING_EPOCHS
    config["training"]["callbacks"] = []  # no early stopping: they train through the whole minute
    long = work / "long.json"
    long.write_text(json.dumps(config))
    env.update(DATABASE_URL=database_url, PYTHONUNBUFFERED="1")
    port = free_port()
    log = open(work / "up.log", "wb")  # up writes to it until the end: not a with block
    up = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "up", "--workers", "2", "--bind", f"127.0.0.1:{port}",
         "--enqueue", str(long), "--enqueue", str(long)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 600
    while b"Log in at" not in (work / "up.log").read_bytes():
        if up.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("up did not start:\n" + (work / "up.log").read_text()[-3000:])
        time.sleep(0.2)
    return up, f"http://127.0.0.1:{port}", env


def wait_until_training(host: str, token: str, timeout: float = 300) -> list[int]:
    """The two queued runs' ids once both report an epoch (they are the newest ones)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request = urllib.request.Request(
            f"{host}/api/executions?status=running&limit=10", headers={"Authorization": f"Bearer {token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = json.loads(response.read())
        except (OSError, ValueError):
            body = {}
        items = body.get("items", body if isinstance(body, list) else [])
        running = [item["id"] for item in items if item.get("status") == "running" and item.get("epochs")]
        if len(running) >= 2:
            return running[:2]
        time.sleep(1)
    raise SystemExit("the two runs did not start training")


# --- the teammates -------------------------------------------------------------------------------


def answered(answer: Any) -> bool:
    """Whether a teammate's request got its page: anything but a 200 (a redirect to the login page included) is
    marked an error in locust's figures."""
    if answer.status_code == 200 and "/accounts/login" not in answer.url:
        return True
    answer.failure(f"{answer.status_code} {answer.error or ''}".strip())
    return False


def poll_log(client: HttpSession, pk: int, offset: int | None) -> int | None:
    """The run's log from ``offset`` on, as its page polls it: the offset to ask from next time."""
    log_url = f"/executions/{pk}/log.json" + ("" if offset is None else f"?offset={offset}")
    with client.get(log_url, name="run page: log poll", catch_response=True, allow_redirects=False) as answer:
        return answer.json().get("offset", offset) if answered(answer) else offset


def poll_run(client: HttpSession, pk: int) -> None:
    """A run page without its stream: its charts' and log's polling every 2 s, for 10 s."""
    import gevent

    offset = None
    for _ in range(5):
        with client.get(
            f"/executions/{pk}/data.json", name="run page: data poll", catch_response=True, allow_redirects=False
        ) as answer:
            answered(answer)
        offset = poll_log(client, pk, offset)
        gevent.sleep(2)


def follow_run(client: HttpSession, pk: int, training: bool) -> None:
    """A run page's 10 s as its script spends them (static/js/execution.js): the log once (its last lines), then a
    training run's event stream held open (epochs and log lines come pushed); a finished run's page asks no more."""
    import gevent

    poll_log(client, pk, None)
    if not training:
        gevent.sleep(10)
        return
    url = f"/executions/{pk}/events"
    with client.get(url, name="run page: stream opened", stream=True, catch_response=True) as answer:
        if not answered(answer):
            return
        answer.success()
        with gevent.Timeout(10, False):  # False: the block ends quietly when the 10 s are up
            for _ in answer.iter_content(chunk_size=None):
                pass
        answer.close()


def teammate(shared: dict[str, Any], training: list[int], polling: bool = False) -> type[HttpUser]:
    """The locust user: a teammate who reads the pages, watches runs (``training`` half the time), uses the API.
    ``polling``: the run page polls, as it does when its stream cannot open, instead of holding the stream."""
    from locust import HttpUser, between, task

    from bench.dashboard import QUERY, SORTED

    runs, experiment, token = shared["runs"], shared["experiment"], shared["token"]
    sessions = iter(shared["sessions"])
    page = f"/experiments/{experiment}/"

    class Teammate(HttpUser):
        wait_time = between(1, 5)

        def on_start(self) -> None:
            self.client.cookies.set("sessionid", next(sessions))

        def get(self, url: str, name: str, follow: bool = False, **kwargs: Any) -> None:
            """GET ``url``; anything but a 200 is an error (a redirect to the login page included). ``follow``:
            a redirect is followed first, as a browser does (a run's id URL moves to its permalink)."""
            with self.client.get(url, name=name, catch_response=True, allow_redirects=follow, **kwargs) as answer:
                answered(answer)

        @task(2)
        def experiments_list(self) -> None:
            self.get("/", "experiments list")

        @task(4)
        def experiment_page(self) -> None:
            choice = random.choice(
                [
                    "",
                    f"?{urlencode({'sort': SORTED})}",
                    f"?{urlencode({'sort': SORTED, 'page': 3})}",
                    f"?{urlencode({'q': QUERY})}",
                ]
            )
            self.get(page + choice, "experiment page (sorted, paged, queried)")

        @task(4)
        def watch_a_run(self) -> None:
            """A run's page for 10 s (a training run, half the time), asking what its page's script asks."""
            pk = random.choice(training) if random.random() < 0.5 else random.choice(runs)["pk"]
            self.get(f"/executions/{pk}/", "run page", follow=True)
            if polling:
                poll_run(self.client, pk)
            else:
                follow_run(self.client, pk, pk in training)

        @task(2)
        def compare(self) -> None:
            chosen = ",".join(str(run["pk"]) for run in random.sample(runs, 5))
            self.get(f"/compare/?runs={chosen}", "compare page")
            self.get(f"/compare/data.json?runs={chosen}", "compare data")

        @task(2)
        def api(self) -> None:
            pk = random.choice(runs)["pk"]
            headers = {"Authorization": f"Bearer {token}"}
            self.get(f"/api/executions/{pk}", "API: execution", headers=headers)
            self.get(f"/api/executions/{pk}/metrics", "API: metrics", headers=headers)

    return Teammate


def measure(args: argparse.Namespace, host: str, shared: dict[str, Any], training: list[int]) -> bool:
    """``args.users`` teammates for ``args.seconds``; prints the figures, and whether the goal is met."""
    import gevent
    from locust.env import Environment

    user = teammate(shared, training, args.polling)
    user.host = host
    environment = Environment(user_classes=[user])
    runner = environment.create_local_runner()
    runner.start(args.users, spawn_rate=10)
    gevent.spawn_later(args.seconds, runner.quit)
    runner.greenlet.join()
    return report(args, environment.stats, training)


def report(args: argparse.Namespace, stats: RequestStats, training: list[int]) -> bool:
    """Each page's requests, errors and percentiles; whether the goal (no errors, p95 < 200 ms) is met."""
    web, pool = os.environ.get("GYMNOS_WEB_WORKERS", "2"), os.environ.get("GYMNOS_DB_POOL_MAX", "8")
    print(
        f"{args.users} teammates for {args.seconds} s on PostgreSQL with {args.runs:,} runs, {len(training)} runs "
        f"training (manage.py up: gunicorn, {web} uvicorn web processes, connection pool {pool}, 2 workers), "
        + ("run pages polling every 2 s:" if args.polling else "run pages following their stream:")
    )
    print(f"{'page':44}{'requests':>9}{'errors':>8}{'p50':>8}{'p95':>8}{'p99':>8}  (ms)")
    for entry in sorted(stats.entries.values(), key=lambda entry: entry.name):
        print(
            f"{entry.name:44}{entry.num_requests:>9}{entry.num_failures:>8}"
            f"{entry.get_response_time_percentile(0.5):>8.0f}{entry.get_response_time_percentile(0.95):>8.0f}"
            f"{entry.get_response_time_percentile(0.99):>8.0f}"
        )
    total = stats.total
    p95 = total.get_response_time_percentile(0.95)
    print(
        f"{'all':44}{total.num_requests:>9}{total.num_failures:>8}{total.get_response_time_percentile(0.5):>8.0f}"
        f"{p95:>8.0f}{total.get_response_time_percentile(0.99):>8.0f}"
    )
    print(f"requests/s: {total.num_requests / args.seconds:.1f}")
    for error in stats.errors.values():
        print(f"error: {error.method} {error.name}: {error.error} (x{error.occurrences})")
    met = total.num_failures == 0 and p95 < 200
    print(f"goal (no errors, p95 < 200 ms): {'met' if met else 'NOT met'}")
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--database-name", default=DATABASE, help="the database the fill makes (dropped first): one of your own"
    )
    parser.add_argument("--streams", type=int, default=0, help="the streams' case: this many stream clients")
    parser.add_argument("--pause", type=float, default=1.0, help="the streams' case: seconds an epoch lasts")
    parser.add_argument(
        "--beside", type=int, default=0, help="the teammates' case: this many clients also hold a training run's stream"
    )
    parser.add_argument(
        "--polling", action="store_true", help="the run pages poll every 2 s (their fallback) instead of their stream"
    )
    parser.add_argument("--fill", action="store_true", help=argparse.SUPPRESS)  # the child's part
    parser.add_argument("--hold", default="", help=argparse.SUPPRESS)  # --beside's child: the stream's URL
    parser.add_argument("--token", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fill:
        fill(args)
        return
    if args.hold:
        hold(args)
        return
    if args.streams:
        streams_case(args)
        return

    # The sessions the fill makes carry a hash signed with SECRET_KEY: the server must use the same one.
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    child = [sys.executable, "-m", "bench.load", "--fill", "--runs", str(args.runs), "--users", str(args.users),
             "--database-name", args.database_name]  # fmt: skip
    filled = subprocess.run(
        [*child, "--database-url", args.database_url], cwd=ROOT, capture_output=True, text=True, check=False
    )
    sys.stderr.write(filled.stderr[-3000:])
    if filled.returncode != 0:
        raise SystemExit("the fill failed")
    shared = json.loads(filled.stdout.strip().splitlines()[-1])
    database_url = args.database_url.rsplit("/", 1)[0] + "/" + shared["database"]

    up, host, _ = start_stack(database_url)
    holder = None
    try:
        training = wait_until_training(host, shared["token"])
        if args.beside:
            holder = hold_beside(args, up, host, shared["token"], training[0])
        print(f"runs {training} training; {args.users} teammates start", file=sys.stderr, flush=True)
        met = measure(args, host, shared, training)
        if holder is not None:
            met = report_beside(args, holder) and met
    finally:
        if holder is not None and holder.poll() is None:
            holder.kill()
        up.send_signal(signal.SIGINT)
        up.wait(120)
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
