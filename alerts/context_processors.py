"""The bell in the nav: how many in-app alerts the signed-in user has not read."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .models import Rule, unread_for

SHOWN_AT_MOST = 99


def bell(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    # Lazy: counted only where a page renders the nav. At most 100 rows are counted.
    return {
        "alerts_unread": lambda: len(unread_for(user).values_list("pk", flat=True)[: SHOWN_AT_MOST + 1]),
        # The choices of the "Alert me" forms (alerts/_fields.html), on whichever page includes one.
        "rule_kinds": Rule.Kind.choices,
        "rule_channels": Rule.Channel.choices,
        "rule_formats": Rule.Format.choices,
    }
