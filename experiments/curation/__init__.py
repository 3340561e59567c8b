"""Curating runs: notes, tags, archive, trash and restore, disk usage and checkpoint retention."""
