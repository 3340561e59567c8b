"""The form of a rule, shared by the pages and ``/api/alerts``: every field checked once, here."""

from __future__ import annotations

from typing import Any

from django import forms

from experiments.models import Execution, Experiment
from experiments.pipeline import allowlist
from sweeps.models import Sweep

from .models import Rule
from .rules import parse_condition

MAX_STALL_MINUTES = 7 * 24 * 60


class RuleForm(forms.Form):
    kind = forms.ChoiceField(choices=Rule.Kind.choices, help_text="When it fires.")
    condition = forms.CharField(
        required=False, max_length=240, help_text="For a threshold: e.g. val_accuracy > 0.95 (>, >=, <, <=)."
    )
    stall_minutes = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_STALL_MINUTES, help_text="For stalled: minutes without an epoch."
    )
    channel = forms.ChoiceField(choices=Rule.Channel.choices, help_text="How you are told.")
    webhook_url = forms.CharField(required=False, max_length=2000, help_text="For a webhook: where it posts.")
    webhook_format = forms.ChoiceField(choices=Rule.Format.choices, required=False, help_text="The body's shape.")

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind, channel = data.get("kind"), data.get("channel")
        if kind == Rule.Kind.THRESHOLD:
            try:
                data["parsed"] = parse_condition(data.get("condition") or "")
            except ValueError as exc:
                self.add_error("condition", str(exc))
        if kind == Rule.Kind.STALLED and not data.get("stall_minutes"):
            self.add_error("stall_minutes", "say after how many minutes without an epoch a running run is stalled")
        if channel == Rule.Channel.WEBHOOK:
            url = (data.get("webhook_url") or "").strip()
            problem = allowlist.url_problem(url, allowlist.WEBHOOKS) if url else "give the webhook's URL"
            if problem:
                self.add_error("webhook_url", problem)
            data["webhook_url"] = url
        if channel == Rule.Channel.EMAIL and not self.user.email:
            self.add_error("channel", "your account has no e-mail address; ask an admin to add one, or pick another")
        return data

    def build(
        self,
        scope: str,
        execution: Execution | None = None,
        experiment: Experiment | None = None,
        sweep: Sweep | None = None,
    ) -> Rule:
        """The rule the valid form describes, for ``scope`` and what it watches, saved."""
        data = self.cleaned_data
        rule = Rule(
            owner=self.user,
            scope=scope,
            execution=execution,
            experiment=experiment,
            sweep=sweep,
            kind=data["kind"],
            channel=data["channel"],
        )
        if rule.kind == Rule.Kind.THRESHOLD:
            rule.metric, rule.operator, rule.threshold = data["parsed"]
            rule.condition = f"{rule.metric} {rule.operator} {rule.threshold:g}"
        if rule.kind == Rule.Kind.STALLED:
            rule.stall_minutes = data["stall_minutes"]
        if rule.channel == Rule.Channel.WEBHOOK:
            rule.webhook_url = data["webhook_url"]
            rule.webhook_format = data.get("webhook_format") or Rule.Format.JSON
        rule.save()
        return rule
