"""The delivery job: ``deliver(pk)`` sends one alert, claimed by a conditional update so that it is sent once.

Queued by ``alerts.firing`` with RQ's ``Retry`` (``GYMNOS_ALERT_RETRY_INTERVALS``: the waits between attempts).
A failed attempt raises, and RQ tries again after the next wait; the last attempt does not raise: it marks the
delivery failed and its rule failing (shown on the rules page) until a delivery of that rule succeeds.
"""

from __future__ import annotations

from django.db.models import F
from django.utils import timezone
from rq import get_current_job

from . import channels
from .models import Delivery, Rule

MAX_REASON = 1000


def deliver(pk: int) -> str:
    """Send delivery ``pk`` unless another job took it; returns what became of it."""
    claimed = Delivery.objects.filter(pk=pk, status=Delivery.State.PENDING).update(
        status=Delivery.State.SENDING, attempts=F("attempts") + 1
    )
    if not claimed:
        return "taken"  # sent, failed, suppressed, or being sent by another job: a job delivered twice sends once
    delivery = Delivery.objects.select_related("rule__owner", "execution__experiment").get(pk=pk)
    try:
        channels.send(delivery)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"[:MAX_REASON]
        job = get_current_job()
        if job is not None and job.retries_left:
            Delivery.objects.filter(pk=pk).update(status=Delivery.State.PENDING, reason=reason)
            raise
        Delivery.objects.filter(pk=pk).update(status=Delivery.State.FAILED, reason=reason)
        Rule.objects.filter(pk=delivery.rule_id).update(failing=True, last_error=reason)
        return "failed"
    Delivery.objects.filter(pk=pk).update(status=Delivery.State.SENT, sent_at=timezone.now(), reason="")
    Rule.objects.filter(pk=delivery.rule_id, failing=True).update(failing=False)
    return "sent"
