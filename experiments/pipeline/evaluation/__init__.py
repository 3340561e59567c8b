"""The evaluation report (``evaluation.json``) the engine writes for a run's test split.

- ``report``: decide the task and write the report; ``classification`` and ``regression``: each task's figures;
  ``common``: numbers, labels and curve downsampling both share; ``rebuild``: the report again for an older folder.
"""
