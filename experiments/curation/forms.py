"""The curation forms: each ``clean_<field>`` turns text into what the action needs (sidecar's limits)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from . import sidecar

BULK_ACTIONS = {
    "tag": "Tag",
    "untag": "Untag",
    "archive": "Archive",
    "unarchive": "Unarchive",
    "delete": "Delete",
}
MAX_BULK = 1000  # runs one bulk action may name


def _checked(function: Any, value: Any) -> Any:
    try:
        return function(value)
    except sidecar.SidecarError as exc:
        raise forms.ValidationError(str(exc)) from None


class NotesForm(forms.Form):
    title = forms.CharField(
        required=False,
        max_length=sidecar.MAX_TITLE,
        help_text="Empty: the config's experiment.name.",
    )
    tags = forms.CharField(required=False, max_length=4000, help_text="Comma-separated, e.g. baseline, wide.")
    notes = forms.CharField(
        required=False,
        max_length=sidecar.MAX_NOTES,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Markdown: *emphasis*, lists, links, `code`, tables. HTML is shown as text.",
    )

    def clean_title(self) -> str:
        return _checked(sidecar.clean_title, self.cleaned_data["title"])

    def clean_tags(self) -> list[str]:
        return _checked(sidecar.parse_tags, self.cleaned_data["tags"])

    def clean_notes(self) -> str:
        return _checked(sidecar.clean_notes, self.cleaned_data["notes"])


class TagForm(forms.Form):
    tag = forms.CharField(max_length=4000, help_text="One tag, or several comma-separated.")

    def clean_tag(self) -> list[str]:
        tags = _checked(sidecar.parse_tags, self.cleaned_data["tag"])
        if not tags:
            raise forms.ValidationError("Give a tag.")
        return tags


def parse_ids(text: str) -> list[int]:
    """``"3,5,8"`` -> ``[3, 5, 8]`` (duplicates dropped); ValidationError naming a part that is not an id."""
    ids: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit() or len(part) > 18:
            raise forms.ValidationError(f"'{part[:20]}' is not an execution id.")
        if int(part) not in ids:
            ids.append(int(part))
    if not ids:
        raise forms.ValidationError("Select at least one run.")
    if len(ids) > MAX_BULK:
        raise forms.ValidationError(f"{len(ids)} runs selected; at most {MAX_BULK} at once.")
    return ids


class BulkForm(forms.Form):
    action = forms.ChoiceField(choices=list(BULK_ACTIONS.items()))
    runs = forms.CharField(max_length=20 * MAX_BULK, help_text="The execution ids, comma-separated.")
    tags = forms.CharField(required=False, max_length=4000, help_text="Comma-separated, for tag and untag.")

    def clean_runs(self) -> list[int]:
        return parse_ids(self.cleaned_data["runs"])

    def clean_tags(self) -> list[str]:
        return _checked(sidecar.parse_tags, self.cleaned_data["tags"])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("action") in {"tag", "untag"} and "tags" in data and not data["tags"]:
            self.add_error("tags", "Give at least one tag.")
        return data


class EmptyTrashForm(forms.Form):
    older_than = forms.IntegerField(
        min_value=0,
        max_value=36500,
        initial=lambda: settings.GYMNOS_TRASH_DAYS,
        help_text="Days since a run was deleted; 0 empties the whole trash.",
    )
