"""Curating runs: notes, tags, archive, trash and restore, disk usage and checkpoint retention.

Importing it (the app's ``ready``) registers the sync reader of the runs' sidecar and sizes, and
what restores an archived experiment when the index is rebuilt from the folders.
"""

from experiments.index.reader import on_new_experiments, register

from .indexing import READER, restore_archived_experiments

register(READER)
on_new_experiments(restore_archived_experiments)
