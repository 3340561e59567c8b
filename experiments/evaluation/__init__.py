"""The evaluation report of each run, indexed and shown (the engine writes it: pipeline/evaluation.py)."""
