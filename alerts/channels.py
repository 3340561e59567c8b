"""The channels: how a delivery reaches its rule's owner. Each ``send`` raises on failure, saying why.

- e-mail: Django's mail through the SMTP settings (``EMAIL_HOST``, ``EMAIL_PORT``, ...), to the owner's address;
- webhook: a JSON POST (Gymnos' own body, or Slack's or Microsoft Teams' incoming-webhook shape) to a URL on the
  ``GYMNOS_WEBHOOK_HOSTS`` allowlist, resolved once and connected to at that address (``allowlist.post``);
- in the app: nothing to send; the delivery, once sent, is what the bell in the nav counts until it is read.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse

from experiments.pipeline import allowlist

from .models import Delivery, Rule

WEBHOOK_TIMEOUT = 10


def body(delivery: Delivery) -> dict[str, Any]:
    """What a webhook posts, in the rule's format."""
    rule, execution = delivery.rule, delivery.execution
    if rule.webhook_format == Rule.Format.SLACK:
        return {"text": delivery.message}
    if rule.webhook_format == Rule.Format.TEAMS:
        # Teams' incoming-webhook connector card (the "MessageCard" its connectors take).
        return {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": delivery.message[:200],
            "title": f"Gymnos alert: {delivery.event}",
            "text": delivery.message,
        }
    return {
        "alert": {"rule": rule.pk, "key": delivery.key, "event": delivery.event, "kind": rule.kind},
        "message": delivery.message,
        "run": {
            "id": execution.pk,
            "experiment": execution.experiment.name,
            "folder": execution.folder_name,
            "status": execution.status,
            "path": reverse("experiments:execution-by-id", args=[execution.pk]),
        },
        "details": delivery.details,
    }


def send(delivery: Delivery) -> None:
    rule = delivery.rule
    if rule.channel == Rule.Channel.EMAIL:
        address = rule.owner.email
        if not address:
            raise ValueError(f"the rule's owner {rule.owner.get_username()} has no e-mail address")
        subject = " ".join(delivery.message.split())[:150]  # one line: a header never holds a line break
        send_mail(subject, delivery.message, settings.SERVER_EMAIL, [address], fail_silently=False)
    elif rule.channel == Rule.Channel.WEBHOOK:
        allowlist.post(
            rule.webhook_url,
            json.dumps(body(delivery)).encode(),
            "application/json",
            headers={"X-Gymnos-Alert": delivery.key},
            timeout=WEBHOOK_TIMEOUT,
            hosts=allowlist.WEBHOOKS,
        )
