"""The sweeps' RQ jobs: module-level functions that take a sweep's id and reload it.

``sweeps.advance`` imports Optuna, so it is imported when a job runs: the web process enqueues
these by name and never imports it.
"""

from __future__ import annotations


def advance_sweep(sweep_id: int) -> str:
    """Tell the study how trials ended, ask for the next ones and queue them (``sweeps.advance``)."""
    from sweeps import advance

    return advance.advance(sweep_id)
