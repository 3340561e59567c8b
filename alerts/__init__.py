"""Alerts: rules that say when a run should tell someone (it ended, failed, crossed a threshold, logged NaN, stalled)
and how (e-mail, a webhook, the bell in the nav); each alert delivered once, by an RQ job with retries.

A vertical slice over the core: it listens to the core's signals (``experiments.models.lifecycle.execution_ended``,
``epoch_recorded``) and its reaper registry (``experiments.extensions.REAPERS``), connected in ``AlertsConfig.ready``;
the core never imports it. ``alerts.firing.fire(event)`` is the one entry point that matches rules to an event.
"""
