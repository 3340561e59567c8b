"""Which columns an experiment's runs have, and which of its params differ from run to run.

The names, and how many runs have each, are sums of the ``KeyCount`` journal. Whether a param
differs: some runs lack it, or its smallest and largest value differ, which are the two ends of its
range in the value index (two probes). So the experiment page can show, by default, the params
that differ between its runs, at the cost of a few index probes per param rather than reading
every run's params.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import Max

from experiments.models import KeyCount, SearchValue
from experiments.search import counts

VALUES = SearchValue._meta.db_table


@dataclass(frozen=True)
class Catalog:
    """The experiment's columns: every name its runs have, those with numbers, and the params that differ."""

    keys: list[str]
    numeric: set[str]
    varying: list[str]


def _same_everywhere(experiment_id: int, states: tuple[int, ...], field: str, keys: list[str]) -> set[str]:
    """Of ``keys``, those whose smallest and largest ``field`` value (among the runs in ``states``) are equal."""
    if not keys:
        return set()
    marks = ", ".join(["%s"] * len(states))
    scope = f"experiment_id = %s AND key = %s AND state IN ({marks}) AND {field} IS NOT NULL"
    ends = f"(SELECT min({field}) FROM {VALUES} WHERE {scope}), (SELECT max({field}) FROM {VALUES} WHERE {scope})"
    sql = " UNION ALL ".join([f"SELECT %s, {ends}"] * len(keys))
    params: list[Any] = []
    for key in keys:
        params += [key, experiment_id, key, *states, experiment_id, key, *states]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {key for key, smallest, largest in cursor.fetchall() if smallest == largest}


# How long a catalog is reused while the key journal does not move (a run's param changed in place, by
# sync reading an edited config, is the one change the journal does not record).
CACHE_SECONDS = 60


def catalog(experiment_id: int, archived: bool = False) -> Catalog:
    """The columns of the experiment's shown runs (archived ones too with ``archived``).

    Reused from this process's cache until the ``KeyCount`` journal moves: a run arriving, leaving, being
    archived or gaining a name adds rows to it, so the newest row's id says whether anything changed.
    """
    last = KeyCount.objects.aggregate(last=Max("pk"))["last"]
    key = f"gymnos:catalog:{experiment_id}:{int(archived)}:{last}"
    found: Catalog | None = cache.get(key)
    if found is None:
        found = _catalog(experiment_id, archived)
        cache.set(key, found, CACHE_SECONDS)
    return found


def _catalog(experiment_id: int, archived: bool) -> Catalog:
    found = counts.keys(experiment_id, archived=archived)
    runs = counts.total(experiment_id, archived=archived)
    keys = sorted(key for key in found if not key.startswith("tags."))
    params = [key for key in keys if key.startswith("params.")]
    # A param some runs lack, or that is a number in some runs and text in others, differs already.
    whole = [key for key in params if len(found[key]) == 1 and sum(found[key].values()) >= runs]
    states = (SearchValue.State.SHOWN, SearchValue.State.ARCHIVED) if archived else (SearchValue.State.SHOWN,)
    same = _same_everywhere(experiment_id, states, "number", [key for key in whole if True in found[key]])
    same |= _same_everywhere(experiment_id, states, "text", [key for key in whole if False in found[key]])
    return Catalog(
        keys=keys,
        numeric={key for key in keys if found[key].get(True)},
        varying=[key for key in params if key not in same],
    )
