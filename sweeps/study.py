"""A sweep's Optuna study, kept in Gymnos' own database (Optuna's RDB storage on ``DATABASE_URL``).

Workers on several machines share one study with no extra service: each opens it by name in the
same database the index lives in (SQLite by default, PostgreSQL when scaled out). Only workers
import this module (Optuna and SQLAlchemy take a noticeable part of a second to import); the web
process reads what the sweep's rows say.

    study = open_study(sweep)               # created on first use
    number, params = ask(sweep, trial_number)
    tell(sweep, number, "succeeded", 23.4)
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from typing import Any

import optuna
import sqlalchemy
from django.db import connection
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from experiments.models import Status

from .document import Choice, HyperbandPruner, IntUniform, LogUniform, MedianPruner, SweepDocument, Uniform
from .models import Sweep

log = logging.getLogger(__name__)
optuna.logging.set_verbosity(optuna.logging.WARNING)

# How long a write waits for SQLite's lock (Django's own connections wait as long).
SQLITE_TIMEOUT = 60


def storage_url() -> str:
    """A SQLAlchemy URL for the database Django uses now (in tests: the test database)."""
    conf = connection.settings_dict
    if conf["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{conf['NAME']}"
    if "postgresql" not in conf["ENGINE"]:
        raise RuntimeError(f"sweeps keep their Optuna study in SQLite or PostgreSQL, not {conf['ENGINE']}")
    options = {key: str(value) for key, value in (conf.get("OPTIONS") or {}).items() if isinstance(value, (str, int))}
    url = sqlalchemy.engine.URL.create(
        "postgresql+psycopg",
        username=conf.get("USER") or None,
        password=conf.get("PASSWORD") or None,
        host=conf.get("HOST") or None,
        port=int(conf["PORT"]) if conf.get("PORT") else None,
        database=conf["NAME"],
        query=options,
    )
    return url.render_as_string(hide_password=False)


_storages: list[optuna.storages.RDBStorage] = []


@functools.cache
def _storage(url: str) -> optuna.storages.RDBStorage:
    kwargs: dict[str, Any] = (
        {"connect_args": {"timeout": SQLITE_TIMEOUT}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    )
    for attempt in range(3):
        try:
            # The first one in a database creates Optuna's tables; two at once may collide: try again.
            opened = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
            if url.startswith("sqlite"):
                sqlalchemy.event.listen(opened.engine, "connect", _sqlite_like_django)
                opened.engine.dispose()  # the connections made so far did not run it
            _storages.append(opened)
            return opened
        except sqlalchemy.exc.SQLAlchemyError:
            if attempt == 2:
                raise
            time.sleep(0.5 + attempt)
    raise AssertionError("unreachable")


def _sqlite_like_django(connection: Any, record: Any) -> None:
    """Commit as Django's own connections do (``settings``: WAL, ``synchronous=NORMAL``): without an fsync on
    each commit, 10 ms less for each trial asked and told. The journal mode is the database file's; Django set it."""
    connection.execute("PRAGMA synchronous=NORMAL")


def storage() -> optuna.storages.RDBStorage:
    return _storage(storage_url())


def warm() -> None:
    """Open this database's study storage now (a worker, before it forks its jobs): each work horse then
    reuses it, with SQLAlchemy's compiled statements, instead of opening its own (0.15 s a trial).
    A forked horse never uses the worker's connections: it drops them and opens its own (below)."""
    storage()


@functools.cache
def _kept(url: str) -> optuna.storages.BaseStorage:
    return optuna.storages._CachedStorage(_storage(url))


def kept_storage() -> optuna.storages.BaseStorage:
    """The study storage behind Optuna's trial cache, one for the life of this process.

    Each ``optuna.Study`` otherwise wraps the storage in a cache of its own, and its first read loads every
    trial of the study: 30 ms at 24 trials, 290 ms at 300 (``bench/sweep_study.py``). Kept, a process reads
    only the trials that are new or were still running: what a work horse does for each trial of a sweep it
    trains one after the other (follow-on runs). Optuna's cache is built for processes sharing one study:
    a finished trial never changes, and it reads again those it last saw unfinished.
    """
    return _kept(storage_url())


def _drop_inherited_connections() -> None:
    """In a forked child: forget the pool's connections (still the parent's; not closed here), as SQLAlchemy's
    guide to multiprocessing says, so the child's first query opens a connection of its own; and start with
    no trial cache (its lock could have been held by a thread of the parent at the fork)."""
    for cached in _storages:
        cached.engine.dispose(close=False)
    _kept.cache_clear()


os.register_at_fork(after_in_child=_drop_inherited_connections)


def close() -> None:
    """Close this process's connections to the study storage (a long-lived process done with sweeps, a test)."""
    for cached in _storages:
        cached.engine.dispose()
    _storages.clear()
    _storage.cache_clear()
    _kept.cache_clear()


def document_of(sweep: Sweep) -> SweepDocument:
    return SweepDocument.model_validate(sweep.document)


def distributions(document: SweepDocument) -> dict[str, BaseDistribution]:
    found: dict[str, BaseDistribution] = {}
    for name, parameter in document.parameters.items():
        if isinstance(parameter, Uniform):
            found[name] = FloatDistribution(parameter.low, parameter.high, step=parameter.step)
        elif isinstance(parameter, LogUniform):
            found[name] = FloatDistribution(parameter.low, parameter.high, log=True)
        elif isinstance(parameter, IntUniform):
            found[name] = IntDistribution(parameter.low, parameter.high, step=parameter.step)
        elif isinstance(parameter, Choice):
            found[name] = CategoricalDistribution(parameter.choice)
    return found


def sampler(document: SweepDocument, seed: int, grid_seed: int) -> optuna.samplers.BaseSampler:
    """A fresh sampler per ask, seeded by the trial's place, so each process asks for different values.

    The grid is the exception: its order is shuffled by ``grid_seed``, the same in every process, and
    a trial takes the combination at its own number.
    """
    if document.method == "grid":
        space = {name: list(parameter.choice) for name, parameter in document.parameters.items()}  # type: ignore[union-attr]
        return optuna.samplers.GridSampler(space, seed=grid_seed)
    if document.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # constant_liar: trials still running count as bad guesses, so parallel trials spread out.
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def pruner(document: SweepDocument) -> optuna.pruners.BasePruner:
    spec = document.pruner
    if isinstance(spec, MedianPruner):
        return optuna.pruners.MedianPruner(n_startup_trials=spec.startup_trials, n_warmup_steps=spec.warmup_epochs)
    if isinstance(spec, HyperbandPruner):
        return optuna.pruners.HyperbandPruner(min_resource=spec.warmup_epochs, reduction_factor=spec.reduction_factor)
    return optuna.pruners.NopPruner()


def open_study(sweep: Sweep, seed: int | None = None) -> optuna.Study:
    """The sweep's study (created if it is not there yet), with its sampler and pruner.

    Loading one that exists is the common case (every trial's end); ``create_study`` would first try
    to insert it and roll back. Its trials are read through this process's kept cache (``kept_storage``).
    ``advance`` opens it once and passes it to ``ask``, ``tell`` and ``importance``, which otherwise open it
    themselves.
    """
    document = document_of(sweep)
    chosen_sampler = sampler(document, sweep.seed if seed is None else seed, sweep.seed)
    try:
        return optuna.Study(sweep.study_name, kept_storage(), sampler=chosen_sampler, pruner=pruner(document))
    except KeyError:  # not created yet
        return optuna.create_study(
            storage=kept_storage(),
            study_name=sweep.study_name,
            direction="maximize" if sweep.direction == "maximize" else "minimize",
            sampler=chosen_sampler,
            pruner=pruner(document),
            load_if_exists=True,
        )


def trial_seed(sweep: Sweep, number: int) -> int:
    return (sweep.seed * 1_000_003 + number) % 2**32


def ask(sweep: Sweep, number: int, opened: optuna.Study | None = None) -> tuple[int, dict[str, Any]]:
    """A new trial of the study: its Optuna number and the values sampled for it."""
    document = document_of(sweep)
    if opened is None:
        opened = open_study(sweep, trial_seed(sweep, number))
    else:  # the sampler is seeded by the trial's place (``sampler``)
        opened.sampler = sampler(document, trial_seed(sweep, number), sweep.seed)
    trial = opened.ask(distributions(document))
    return trial.number, dict(trial.params)


_STATES = {Status.SUCCEEDED: TrialState.COMPLETE, Status.PRUNED: TrialState.PRUNED}


def tell(
    sweep: Sweep, optuna_number: int, outcome: str, value: float | None, opened: optuna.Study | None = None
) -> None:
    """Tell the study how a trial ended: complete with its value, pruned, or failed (anything else)."""
    study = opened or open_study(sweep)
    state = _STATES.get(outcome, TrialState.FAIL)  # type: ignore[call-overload]
    if state == TrialState.COMPLETE and (value is None or not math.isfinite(value)):
        state = TrialState.FAIL
    try:
        study.tell(optuna_number, value if state == TrialState.COMPLETE else None, state=state)
    except RuntimeError as exc:
        if "Study.stop" in str(exc):
            # The grid sampler's last combination was told: it asks to stop an optimize loop there is none of.
            # The trial's state is stored first (Optuna stores it whatever the sampler raised).
            return
        log.warning("Trial %s of %s: %s", optuna_number, sweep, exc)
    except ValueError as exc:  # told already (a second job raced this one): it stands
        log.warning("Trial %s of %s: %s", optuna_number, sweep, exc)


def importance(sweep: Sweep, opened: optuna.Study | None = None) -> dict[str, float]:
    """Each parameter's importance (Optuna's default evaluator), highest first; {} before two trials completed."""
    study = opened or open_study(sweep)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2 or len({trial.value for trial in complete}) < 2:
        return {}
    from optuna.importance import get_param_importances  # imports scikit-learn's forests

    try:
        found = get_param_importances(study)
    except (RuntimeError, ValueError) as exc:  # e.g. a parameter with one value in every trial
        log.info("No importances for %s yet: %s", sweep, exc)
        return {}
    return {name: round(float(value), 6) for name, value in found.items()}


def running_trial(sweep: Sweep, optuna_number: int) -> optuna.trial.Trial:
    """The live trial a run's pruning callback reports to."""
    study = open_study(sweep)
    rdb = storage()
    trial_id = rdb.get_trial_id_from_study_id_trial_number(rdb.get_study_id_from_name(sweep.study_name), optuna_number)
    return optuna.trial.Trial(study, trial_id)
