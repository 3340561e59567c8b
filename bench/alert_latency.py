"""Alert latency: from a run failing to its webhook receiving the alert, and to the mail reaching an SMTP server.

Starts an embedded Redis and one warm worker (``manage.py rqworker``, as ``up`` runs it), a webhook receiver and
an SMTP server on 127.0.0.1 (the tests' own, ``tests/alert_receivers.py``), and one user with two rules on every
run they launch: failed -> webhook, failed -> e-mail. Then fails N runs one at a time (the worker idle before
each) and times each alert from the transition's commit to its arrival:

    python -m bench.alert_latency             # 20 runs
    python -m bench.alert_latency --runs 5

Goal (issue 24): under 5 s to both.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.stack import fresh

ROOT = Path(__file__).resolve().parent.parent
GOAL = 5.0


def arrivals(checks, timeout=30.0):
    """When each of ``checks`` (name -> predicate) first came true, polled together every 5 ms."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < len(checks) and time.monotonic() < deadline:
        for name, check in checks.items():
            if name not in seen and check():
                seen[name] = time.monotonic()
        time.sleep(0.005)
    if len(seen) < len(checks):
        raise SystemExit(f"no alert by {', '.join(sorted(set(checks) - set(seen)))} within {timeout:.0f} s")
    return seen


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from tests.alert_receivers import SMTPServer, Webhook

    hook, smtp = Webhook(), SMTPServer()
    tmp, env = fresh("alerts")
    env.update(
        GYMNOS_WEBHOOK_HOSTS=f"127.0.0.1:{hook.port}",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp.port),
    )
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gymnos_web.settings")
    import django

    from gymnos_web import localstate

    localstate.prepare()  # var/ and its secret key, as manage.py makes them
    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.utils import timezone

    from alerts.models import Rule
    from experiments.jobs.queues import EmbeddedRedis
    from experiments.models import Execution, Experiment, Status

    call_command("migrate", verbosity=0)
    redis_server = EmbeddedRedis().start()
    worker = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "rqworker", "default", "--name", "bench-alerts"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    to_hook, to_mail = [], []
    try:
        import django_rq
        from rq import Worker

        deadline = time.monotonic() + 120
        while not any(w.name == "bench-alerts" for w in Worker.all(connection=django_rq.get_connection())):
            if time.monotonic() > deadline:
                raise SystemExit("the worker did not start")
            time.sleep(0.2)
        ada = User.objects.create_user("ada", email="ada@example.org")
        for channel in (Rule.Channel.WEBHOOK, Rule.Channel.EMAIL):
            Rule.objects.create(
                owner=ada, scope=Rule.Scope.MINE, kind=Rule.Kind.FAILED, channel=channel, webhook_url=hook.url
            )
        experiment = Experiment.objects.create(name="bench")
        for index in range(args.runs + 1):  # the first warms the worker's first fork; not counted
            run = Execution.objects.create(
                experiment=experiment, status=Status.RUNNING, started_at=timezone.now(), launched_by=ada
            )
            posts, mails = len(hook.received), len(smtp.messages)
            start = time.monotonic()
            Execution.objects.fail(run.pk, "bench: the run failed")  # committed here: autocommit
            seen = arrivals(
                {
                    "webhook": lambda posts=posts: len(hook.received) > posts,
                    "mail": lambda mails=mails: len(smtp.messages) > mails,
                }
            )
            if index:
                to_hook.append(seen["webhook"] - start)
                to_mail.append(seen["mail"] - start)
            time.sleep(0.3)  # the worker is idle again before the next run fails
    finally:
        worker.terminate()
        worker.wait()
        redis_server.stop()
        hook.close()
        smtp.close()

    def p95(values):
        return sorted(values)[max(0, round(0.95 * len(values)) - 1)]

    print(f"{args.runs} failing runs, one warm worker on the embedded Redis, receivers on 127.0.0.1:")
    for name, values in (("run failed -> webhook received", to_hook), ("run failed -> mail received", to_mail)):
        verdict = "meets" if p95(values) < GOAL else "MISSES"
        print(
            f"  {name:32} p50 {statistics.median(values):.3f} s   p95 {p95(values):.3f} s   "
            f"max {max(values):.3f} s   ({verdict} the goal: under {GOAL:.0f} s)"
        )


if __name__ == "__main__":
    main()
