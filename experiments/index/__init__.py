"""The index: the database kept in step with the run folders, which stay the record of truth.

- ``sync``: walk the trainings root and index every folder that changed (idempotent), or one run's folder.
- ``listing``: find the run folders and fingerprint each (stat only), so an unchanged one is not read.
- ``reader``: read one folder's files into what the index keeps; features register readers of their own files.
"""
