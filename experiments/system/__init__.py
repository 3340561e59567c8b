"""System metrics: what each run costs the machine, and the load of every worker machine.

The engine writes ``system_metrics.jsonl`` (``experiments.pipeline.system_metrics``); sync reads it
into ``system/...`` histories and the ``Execution.system`` summary (the reader registered here, when
the app starts); ``views`` and ``api`` serve it; the queue page shows each worker machine's figures.
"""

from experiments.extensions import WORKER_HEARTBEAT, WORKER_READY
from experiments.index.reader import register

from . import machines
from .indexing import READER

register(READER)
WORKER_READY.append(machines.start)
WORKER_HEARTBEAT.append(machines.publish)
