"""Curating runs: notes, tags, archive, trash and restore, disk usage and checkpoint retention.

Importing it (the app's ``ready``) registers the sync reader of the runs' sidecar and sizes.
"""

from experiments.sync_reader import register

from .indexing import READER

register(READER)
