"""Sweeps: searching hyperparameters with Optuna on the worker fleet, each trial an ordinary execution."""
