"""The evaluation report of each run, indexed and shown (the engine writes it: pipeline/evaluation/report.py).

- ``reader``: sync puts the report's headline numbers in ``Execution.evaluation`` (registered here, at start-up).
- ``report``: pages and the API read the whole evaluation.json from the folder, bounded.
- ``views``/``urls``: the JSON the Evaluation panels of the execution and compare pages draw (share links too).
- ``api``: ``GET /api/executions/{id}/evaluation``.
"""

from experiments.index.reader import register

from .reader import READER

register(READER)
