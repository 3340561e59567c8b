"""What a sweep tells the rest of Gymnos (alerts listen), as Django signals sent after the change is committed.

- ``sweep_finished``: ``sweep`` (its id) finished, every trial asked for ended and told to the study.
- ``new_best_trial``: a trial's objective beats every other told trial's: ``sweep``, ``execution`` (the trial's
  run), ``number`` (the trial's), ``metric`` and ``value``.
"""

from django.dispatch import Signal

sweep_finished = Signal()
new_best_trial = Signal()
