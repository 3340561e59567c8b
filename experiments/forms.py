"""Plain forms: each ``clean_<field>`` turns text into what the view needs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from experiments.models.projects import DEFAULT_PROJECT
from experiments.pipeline import jsonlimits
from experiments.pipeline.datasets import DATASETS
from experiments.pipeline.names import control_character, metric_name_problem
from experiments.pipeline.params import flatten

if TYPE_CHECKING:
    from experiments.pipeline.errors import Problem

EXPIRY_CHOICES = [("", "Never"), ("1", "In 1 day"), ("7", "In 7 days"), ("30", "In 30 days"), ("90", "In 90 days")]


class ShareForm(forms.Form):
    allow_downloads = forms.BooleanField(
        required=False, help_text="Let visitors download the model, checkpoints, log and files."
    )
    expires_in = forms.ChoiceField(choices=EXPIRY_CHOICES, required=False, help_text="When the link stops working.")

    def clean_expires_in(self) -> datetime | None:
        days = self.cleaned_data["expires_in"]
        return timezone.now() + timedelta(days=int(days)) if days else None


class CompareShareForm(ShareForm):
    runs = forms.CharField(help_text="The execution ids compared, comma-separated.")

    def clean_runs(self) -> list[int]:
        ids: list[int] = []
        for part in self.cleaned_data["runs"].split(","):
            part = part.strip()
            if not part.isdigit():
                raise forms.ValidationError(f"'{part}' is not an execution id.")
            if int(part) not in ids:
                ids.append(int(part))
        if not ids:
            raise forms.ValidationError("Choose at least one run to share.")
        return ids


class ExternalRunForm(forms.Form):
    experiment = forms.CharField(max_length=255, help_text="The experiment it belongs to, e.g. boston_housing.")
    title = forms.CharField(max_length=255, required=False, help_text="A name for the run.")
    epochs = forms.IntegerField(
        min_value=1, required=False, help_text="How many epochs it will train (for the progress bar)."
    )

    def clean_experiment(self) -> str:
        name = self.cleaned_data["experiment"].strip()
        if "/" in name or name in {".", ".."} or name.startswith(".") or control_character(name):
            raise forms.ValidationError("Use a plain folder name: letters, digits, '_' or '-', with no '/'.")
        return name


# What one RemoteMonitor post may hold: Keras sends a handful of metrics per epoch.
EPOCH_POST_BYTES = 64 * 1024
EPOCH_POST_METRICS = 100


def parse_epoch_post(request: HttpRequest) -> tuple[int, dict[str, float | None]]:
    """The epoch a Keras ``RemoteMonitor`` posted: ``{"epoch": 0, "loss": ..., ...}``.

    Keras sends it as the form field ``data`` (JSON text), or as a JSON body with ``send_as_json``.
    Raises ValueError with what was wrong.
    """
    payload = _epoch_payload(request)
    epoch = payload.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise ValueError(f"'epoch' must be a whole number counted from 0, got {json.dumps(epoch)[:40]}")
    if epoch >= settings.GYMNOS_MAX_EPOCHS:
        raise ValueError(f"'epoch' must be below {settings.GYMNOS_MAX_EPOCHS:,} (GYMNOS_MAX_EPOCHS), got {epoch:,}")
    return epoch, _epoch_metrics(payload)


def _epoch_payload(request: HttpRequest) -> dict[str, Any]:
    """The post's JSON object, from the form field ``data`` or the body, bounded; ValueError if it is none."""
    if len(request.body) > EPOCH_POST_BYTES:
        raise ValueError(f"the post is {len(request.body):,} bytes; at most {EPOCH_POST_BYTES:,} are accepted")
    if request.content_type == "application/json":
        text: str | bytes = request.body
    else:
        posted = request.POST.get("data")
        if posted is None:
            raise ValueError("expected a form field 'data' holding JSON (Keras RemoteMonitor's default) or a JSON body")
        text = posted
    try:
        payload = jsonlimits.loads(
            text, max_bytes=EPOCH_POST_BYTES, max_depth=2, what="the epoch data", refuse_nul=True
        )
    except jsonlimits.JSONLimitError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(payload, dict):
        raise ValueError('the epoch data must be a JSON object like {"epoch": 0, "loss": 0.5}')
    return payload


def _epoch_metrics(payload: dict[str, Any]) -> dict[str, float | None]:
    """The post's metrics (every key but ``epoch``): at most ``EPOCH_POST_METRICS``, each a number or null."""
    names = [name for name in payload if name != "epoch"]
    if len(names) > EPOCH_POST_METRICS:
        raise ValueError(f"a post may hold at most {EPOCH_POST_METRICS} metrics, got {len(names)}")
    metrics: dict[str, float | None] = {}
    for name in names:
        value = payload[name]
        refused = metric_name_problem(name)
        if refused:
            raise ValueError(refused)
        if isinstance(value, bool) or not isinstance(value, (int, float)) and value is not None:
            raise ValueError(f"metric '{name}' must be a number, got {json.dumps(value)[:40]}")
        metrics[name] = value
    return metrics


# --- the new-run form --------------------------------------------------------------------------

OPTIMIZERS = ["adam", "adamw", "sgd", "rmsprop", "adagrad", "adadelta", "adamax", "nadam"]
# Callbacks offered as checkboxes, with the arguments a new one starts with.
CALLBACKS: dict[str, dict[str, Any]] = {
    "early_stopping": {"type": "early_stopping"},
    "model_checkpoint": {"type": "model_checkpoint", "filepath": "weights.{epoch:02d}-{val_loss:.2f}.h5", "period": 5},
    "reduce_lr_on_plateau": {"type": "reduce_lr_on_plateau"},
    "terminate_on_nan": {"type": "terminate_on_nan"},
    "csv_logger": {"type": "csv_logger"},
}
# The fields that show one config value each, by the path the params columns name it with
# (``experiments.pipeline.params.flatten``): read from a config, and written back into it, by that path.
PLAIN_FIELDS = {
    "experiment_name": "experiment.name",
    "epochs": "training.epochs",
    "batch_size": "training.batch_size",
    "fit": "training.samples.fit",
    "val": "training.samples.val",
    "test": "training.samples.test",
}
# Which form field a config path's problem belongs to (longest prefix wins); the rest go by the JSON.
FIELD_PATHS = {
    **{path: field for field, path in PLAIN_FIELDS.items()},
    "dataset.name": "dataset",
    "dataset": "dataset",
    "training.samples": "fit",
    "model.compilation.optimizer": "optimizer",
    "training.callbacks": "callbacks",
}
FIELDS = ["experiment_name", "dataset", "epochs", "batch_size", "fit", "val", "test", "optimizer", "callbacks"]
# A callback's type among the flattened params: training.callbacks[2].type
CALLBACK_TYPE = re.compile(r"training\.callbacks\[\d+\]\.type")


def _dataset_choices() -> list[tuple[str, str]]:

    return [("", "As in the JSON (e.g. a file dataset)")] + [(name, name) for name in DATASETS]


def fields_from_config(config: Any) -> dict[str, Any]:
    """The form fields' values as a config gives them (blank where it says nothing).

    Read from the config flattened by path, so a config that does not validate (the one being fixed)
    still fills the fields it can.
    """
    params = flatten(config) if isinstance(config, dict) else {}
    dataset = params.get("dataset.name")
    optimizer = params.get("model.compilation.optimizer", params.get("model.compilation.optimizer.type"))
    callbacks = [value for path, value in params.items() if CALLBACK_TYPE.fullmatch(path)]
    return {
        **{field: params.get(path) for field, path in PLAIN_FIELDS.items()},
        "experiment_name": params.get("experiment.name") or "",
        "dataset": dataset if isinstance(dataset, str) else "",
        "optimizer": optimizer if isinstance(optimizer, str) else "",
        "callbacks": sorted(value for value in callbacks if isinstance(value, str) and value in CALLBACKS),
    }


def field_for_path(path: str) -> str | None:
    matches = [
        prefix
        for prefix in FIELD_PATHS
        if path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "[")
    ]
    return FIELD_PATHS[max(matches, key=len)] if matches else None


def project_field(help_text: str) -> forms.ChoiceField:
    """A form's project to launch in: its choices are the user's (``offer_projects``)."""
    return forms.ChoiceField(
        required=False,
        help_text=help_text,
        error_messages={"invalid_choice": "project: %(value)s is not a project where you may launch runs."},
    )


def offer_projects(form: forms.Form, projects: list[str] | None, initial: str | None = None) -> None:
    """Offer ``projects`` (names, ``access.launch_projects``'; None: default alone) in ``form``'s project field,
    ``initial`` chosen if it is one of them, else default, else the first; hidden with one choice, so a
    one-team install sees nothing new. Any other posted is refused at the field, in the same words whether
    a project of that name exists or not."""
    names = projects if projects is not None else [DEFAULT_PROJECT]
    field = cast(forms.ChoiceField, form.fields["project"])
    field.choices = [(name, name) for name in names]
    fallback = DEFAULT_PROJECT if DEFAULT_PROJECT in names or not names else names[0]
    field.initial = initial if initial in names else fallback
    if len(names) <= 1:
        field.widget = forms.HiddenInput()


def chosen_project(form: forms.Form) -> str:
    """The project chosen; none posted: the form's own (default, or the one project the user may launch in)."""
    return form.cleaned_data.get("project") or str(form.fields["project"].initial or DEFAULT_PROJECT)


class RunForm(forms.Form):
    """The common choices as fields, the full config as JSON beside them.

    A field the user changed wins over the JSON; a field left as it was leaves the JSON's value,
    so editing only the JSON works too (``base`` is the JSON the fields were filled from).
    """

    # The numbers' ranges are the schema's to judge (one rule, one place): -3 epochs goes into the config and
    # comes back as training.epochs' problem, at this field, beside every other problem of the config.
    experiment_name = forms.CharField(label="Experiment name", required=False, max_length=255)
    dataset = forms.ChoiceField(required=False)
    epochs = forms.IntegerField(required=False)
    batch_size = forms.IntegerField(label="Batch size", required=False)
    fit = forms.FloatField(label="Fit fraction", required=False)
    val = forms.FloatField(label="Val fraction", required=False)
    test = forms.FloatField(label="Test fraction", required=False)
    optimizer = forms.ChoiceField(
        required=False, choices=[("", "As in the JSON")] + [(name, name) for name in OPTIMIZERS]
    )
    callbacks = forms.MultipleChoiceField(
        required=False, choices=[(name, name) for name in CALLBACKS], widget=forms.CheckboxSelectMultiple
    )
    config = forms.CharField(label="Config (JSON)", widget=forms.Textarea(attrs={"rows": 30, "spellcheck": "false"}))
    base = forms.CharField(required=False, widget=forms.HiddenInput)
    project = project_field("The run's folder and who sees it: its members.")

    def __init__(self, *args: Any, projects: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["dataset"]).choices = _dataset_choices()
        offer_projects(self, projects)
        self.json_problems: list[Problem] = []

    @classmethod
    def for_config(cls, config: dict[str, Any], projects: list[str] | None = None) -> RunForm:
        text = json.dumps(config, indent=2)
        return cls(initial={**fields_from_config(config), "config": text, "base": text}, projects=projects)

    def clean_project(self) -> str:
        return chosen_project(self)

    def clean_config(self) -> dict[str, Any]:
        try:
            config = jsonlimits.loads(self.cleaned_data["config"], what="The config", refuse_nul=True)
        except jsonlimits.JSONLimitError as exc:
            raise forms.ValidationError(f"{exc}.") from None
        if not isinstance(config, dict):
            raise forms.ValidationError("The config must be a JSON object: { ... }.")
        return config

    def clean_base(self) -> dict[str, Any] | None:
        try:
            base = jsonlimits.loads(self.cleaned_data.get("base") or "null", refuse_nul=True)
        except jsonlimits.JSONLimitError:
            base = None
        return base if isinstance(base, dict) else None

    def changed_fields(self) -> dict[str, Any]:
        before = fields_from_config(self.cleaned_data.get("base"))
        changed: dict[str, Any] = {}
        for name in FIELDS:
            value: Any = self.cleaned_data.get(name)
            if value in (None, "", []) and name != "callbacks":
                continue
            if name == "callbacks":
                value = sorted(value)
            if self.cleaned_data.get("base") is None or value != before[name]:
                changed[name] = value
        return changed

    def build_config(self) -> dict[str, Any]:
        """The JSON with every changed field applied (those that read as a value: a field whose text is not a
        number keeps the JSON's value)."""
        config = json.loads(json.dumps(self.cleaned_data["config"]))  # a deep copy
        for name, value in self.changed_fields().items():
            _apply(config, name, value)
        return config

    def add_problems(self, problems: Iterable[Problem]) -> None:
        """Put each of the config's problems at its field, or in the list beside the JSON."""
        for problem in problems:
            field = field_for_path(problem.path)
            if field is not None:
                self.add_error(field, f"{problem.path}: {problem.message}")
            else:
                self.json_problems.append(problem)


def _section(config: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        if not isinstance(config.get(key), dict):
            config[key] = {}
        config = config[key]
    return config


def _apply(config: dict[str, Any], name: str, value: Any) -> None:
    if name in PLAIN_FIELDS:
        *sections, key = PLAIN_FIELDS[name].split(".")
        _section(config, *sections)[key] = value
    elif name == "dataset":
        dataset = _section(config, "dataset")
        dataset.pop("path", None)
        dataset.pop("target", None)
        dataset["name"] = value
    elif name == "optimizer":
        compilation = _section(config, "model", "compilation")
        current = compilation.get("optimizer")
        same_type = isinstance(current, dict) and current.get("type") == value
        compilation["optimizer"] = current if same_type else value
    elif name == "callbacks":
        training = _section(config, "training")
        callbacks = training.get("callbacks")
        existing = callbacks if isinstance(callbacks, list) else []
        kept = [
            c for c in existing if not (isinstance(c, dict) and c.get("type") in CALLBACKS and c["type"] not in value)
        ]
        present = {c.get("type") for c in kept if isinstance(c, dict)}
        training["callbacks"] = kept + [dict(CALLBACKS[name]) for name in value if name not in present]
