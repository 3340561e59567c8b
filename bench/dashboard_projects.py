"""``bench/dashboard.py --projects K``: the dashboard's pages as a member of one project, beside a superuser.

The filled runs are spread over K projects (``team-00`` ... : run ``i`` of the big experiment in project
``i % K``, which has an experiment of the same name; each small experiment in one project). The same pages
as without ``--projects`` (``dashboard.page_urls``, naming ``team-00`` in their query) are then timed, in
alternated rounds, as a superuser (who sees every project, as the bench's user saw every run before
projects) and as a viewer of ``team-00`` alone, and printed side by side with the ratio member / superuser,
each with the number of SQL queries it made (a scoping that adds queries shows there).

    python bench/dashboard.py --projects 20 --executions 2000 --mlflow 0 \\
        --database-url postgres://postgres@127.0.0.1:5432/gymnos_me
"""

from __future__ import annotations

import json
import random
import statistics
from typing import Any

PREFIX = "team"
ACTORS = ("superuser", "member")


def names(k: int) -> list[str]:
    return [f"{PREFIX}-{number:02d}" for number in range(k)]


def make(k: int) -> list[Any]:
    """The K projects the runs are spread over (none without ``--projects``)."""
    from experiments.models import Project

    return [Project.objects.create(name=name) for name in names(k)]


def in_project(urls: dict[str, str], project: str) -> dict[str, str]:
    """The pages of the experiment named in ``project`` (the index lists every project's: left as it is)."""
    return {
        key: url if key == "index" else url + ("&" if "?" in url else "?") + f"project={project}"
        for key, url in urls.items()
    }


def clients() -> dict[str, Any]:
    """A superuser, and a viewer of the first project (granted as ``manage.py project grant`` does)."""
    from django.contrib.auth.models import User
    from django.test import Client

    from experiments import membership

    admin = User.objects.create_superuser("bench-admin", "bench@example.com", "bench-pw-123")
    member = User.objects.create_user("bench-member", password="bench-pw-123")
    membership.grant(membership.find_project(names(1)[0]), membership.Holder(user=member), "viewer")
    found = {}
    for actor, user in zip(ACTORS, (admin, member), strict=True):
        found[actor] = Client()
        found[actor].force_login(user)
    return found


def queries(client: Any, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    return len(captured.captured_queries)


def measure(args: Any, count: int, ids: dict[str, int], connection: Any, dashboard: Any) -> None:
    """Time each page as both actors; prints one JSON line (medians in seconds, queries per page) on stdout."""
    from experiments.models import Execution

    first = names(args.projects)[0]
    own = dict(
        Execution.objects.filter(experiment__project__name=first, experiment__name=dashboard.EXPERIMENT)
        .values_list("folder_name", "pk")
    )  # fmt: skip
    urls = dashboard.page_urls(len(own), first)
    by_actor = clients()
    for client in by_actor.values():
        dashboard.check_pages(client, urls, len(own))
    rng = random.Random(args.seed)
    results: dict[str, dict[str, list[float]]] = {actor: {key: [] for key in [*urls, "compare"]} for actor in ACTORS}
    for _ in range(args.rounds):
        compare = "/compare/data.json?runs=" + ",".join(str(pk) for pk in rng.sample(sorted(own.values()), 20))
        for key, url in [*urls.items(), ("compare", compare)]:
            for actor, client in by_actor.items():
                results[actor][key].append(dashboard.timed(lambda client=client, url=url: client.get(url)))
    counted = {
        actor: {key: queries(client, url) for key, url in [*urls.items(), ("compare", compare)]}
        for actor, client in by_actor.items()
    }
    medians = {
        actor: {key: statistics.median(values) for key, values in cases.items()} for actor, cases in results.items()
    }
    line = {"executions": count, "vendor": connection.vendor, "projects": args.projects, "per_project": len(own)}
    print(json.dumps({**line, "medians": medians, "queries": counted}), flush=True)


def print_table(found: dict[int, dict[str, Any]], rounds: int, k: int, labels: dict[str, str]) -> None:
    """Per size: each page's median as a superuser and as a member of one project, and the ratio."""

    for count, figures in found.items():
        print(
            f"\n{figures['vendor']}, {count:,} runs over {k} projects ({figures['per_project']:,} in the member's), "
            f"{rounds} rounds of each case, alternated; medians in ms (SQL queries):"
        )
        print(f"  {'case':42}{'superuser':>16}{'member':>16}{'ratio':>9}")
        medians, queries_made = figures["medians"], figures["queries"]
        for key in medians["superuser"]:
            cells = "".join(f"{medians[actor][key] * 1000:10.1f} ({queries_made[actor][key]:>2})" for actor in ACTORS)
            ratio = medians["member"][key] / medians["superuser"][key]
            print(f"  {labels.get(key, key):42}{cells}{ratio:8.2f}x")
