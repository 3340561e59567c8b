"""The "Sweep from this run" form: the run's config paths, each to tick and give a range or choices to.

The form turns its fields into a sweep document; the document's own validation (``sweeps.document``)
is what judges it, and each problem it reports is shown at its row or field.
"""

from __future__ import annotations

from typing import Any

from django import forms

from experiments.forms import chosen_project, offer_projects, project_field
from experiments.pipeline import jsonlimits
from experiments.pipeline.config import canonical_params
from experiments.pipeline.params import flatten

from .document import METHODS

DISTRIBUTIONS = [
    ("log_uniform", "log-uniform"),
    ("uniform", "uniform"),
    ("int_uniform", "integers"),
    ("choice", "choice"),
]
# Paths a sweep would rarely search, left off the form's list (any can still be typed in as another path).
SKIPPED = ("experiment.", "tracking.")
OPTIMIZER_RATE = "model.compilation.optimizer.learning_rate"
EXTRA_ROWS = 2
MAX_ROWS = 200


class SweepForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, help_text="Defaults to the run's name + sweep.")
    method = forms.ChoiceField(
        choices=[(m, m) for m in METHODS], initial="tpe", help_text="tpe learns from earlier trials."
    )
    trials = forms.IntegerField(min_value=1, required=False, initial=20, help_text="Optional for grid.")
    parallel = forms.IntegerField(min_value=1, initial=2, help_text="Trials queued or running at once.")
    metric = forms.CharField(max_length=200, initial="val_loss", help_text="The objective: a metric logged each epoch.")
    direction = forms.ChoiceField(
        choices=[("", "from the metric's name"), ("minimize", "minimize"), ("maximize", "maximize")], required=False
    )
    which = forms.ChoiceField(choices=[("best", "its best epoch"), ("last", "its last epoch")], initial="best")
    pruner = forms.ChoiceField(
        choices=[("none", "none"), ("median", "median"), ("hyperband", "hyperband")], initial="none"
    )
    warmup_epochs = forms.IntegerField(min_value=0, initial=5, help_text="No trial is stopped before this many epochs.")
    project = project_field("Where the trials train, and who sees the sweep: its members.")

    def __init__(
        self,
        *args: Any,
        rows: list[dict[str, Any]],
        projects: list[str] | None = None,
        project: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        offer_projects(self, projects, project)
        self.rows = rows
        self.row_errors: dict[str, list[str]] = {}

    def clean_project(self) -> str:
        return chosen_project(self)

    def parameters(self) -> dict[str, Any]:
        """The ticked rows as the document's ``parameters``."""
        found: dict[str, Any] = {}
        for index in range(min(len(self.rows) + EXTRA_ROWS, MAX_ROWS)):
            if not self.data.get(f"use-{index}"):
                continue
            path = str(self.data.get(f"path-{index}", "")).strip()
            if not path:
                continue
            kind = self.data.get(f"kind-{index}", "choice")
            if kind == "choice":
                found[path] = {"choice": parse_choices(str(self.data.get(f"choices-{index}", "")))}
                continue
            spec: dict[str, Any] = {"distribution": kind}
            for end in ("low", "high", "step"):
                text = str(self.data.get(f"{end}-{index}", "")).strip()
                if text:
                    spec[end] = parse_number(text)
            found[path] = spec
        return found

    def document(self, base_run: int) -> dict[str, Any]:
        data = self.cleaned_data
        document: dict[str, Any] = {
            "base": base_run,
            "parameters": self.parameters(),
            "method": data["method"],
            "parallel": data["parallel"],
            "objective": {"metric": data["metric"], "which": data["which"]},
        }
        if data["name"]:
            document["name"] = data["name"]
        if data["trials"] is not None:
            document["trials"] = data["trials"]
        if data["direction"]:
            document["objective"]["direction"] = data["direction"]
        if data["pruner"] != "none":
            document["pruner"] = {"type": data["pruner"], "warmup_epochs": data["warmup_epochs"]}
            if data["pruner"] == "hyperband":
                document["pruner"]["warmup_epochs"] = max(1, data["warmup_epochs"])
        return document

    def add_problems(self, problems: list[Any]) -> None:
        """Each of the document's problems at its row (``parameters["path"]...``), its field, or the form."""
        fields = {"method": "method", "trials": "trials", "parallel": "parallel", "name": "name"}
        fields |= {"objective.metric": "metric", "objective.direction": "direction", "objective.which": "which"}
        for problem in problems:
            if problem.path.startswith('parameters["'):
                path = problem.path.split('"]', 1)[0].removeprefix('parameters["')
                rest = problem.path.split('"]', 1)[1].lstrip(".")
                self.row_errors.setdefault(path, []).append(f"{rest}: {problem.message}" if rest else problem.message)
            elif problem.path in fields:
                self.add_error(fields[problem.path], problem.message)
            elif problem.path.startswith("pruner"):
                self.add_error("pruner", f"{problem.path}: {problem.message}")
            else:
                self.add_error(None, str(problem))

    def bound_rows(self) -> list[dict[str, Any]]:
        """The rows as the template shows them: what was posted (or the defaults), and their errors."""
        shown = []
        for index, row in enumerate([*self.rows, *({"path": "", "value": None} for _ in range(EXTRA_ROWS))]):
            posted = self.is_bound
            path = str(self.data.get(f"path-{index}", row["path"])) if posted else row["path"]
            defaults = suggest(row["value"], row["path"])
            values = {key: self.data.get(f"{key}-{index}", "") if posted else defaults[key] for key in defaults}
            shown.append(
                {
                    "index": index,
                    "path": path,
                    "fixed": bool(row["path"]),
                    "value": row["value"],
                    "use": bool(self.data.get(f"use-{index}")) if posted else False,
                    "errors": self.row_errors.get(path, []),
                    **values,
                }
            )
        return shown


def rows_for(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's config paths a sweep can search: every number, true/false and string value, by the canonical
    paths its params columns show (an optimizer given as "adam" is ``model.compilation.optimizer.type``).

    A section's defaults are listed (``training.seed``), a list item's only where the config wrote them: a
    callback's dozen defaults would bury the layers.
    """
    written = set(flatten(config))
    rows = [
        {"path": path, "value": value}
        for path, value in canonical_params(config).items()
        if isinstance(value, (int, float, str))
        and not path.startswith(SKIPPED)
        and ("[" not in path or path in written)
    ]
    if not any(row["path"] == OPTIMIZER_RATE for row in rows):
        optimizer = next((i for i, row in enumerate(rows) if row["path"] == "model.compilation.optimizer.type"), None)
        at = optimizer + 1 if optimizer is not None else len(rows)
        rows.insert(at, {"path": OPTIMIZER_RATE, "value": 0.001})  # Keras' default rate, written in by the sweep
    return rows


def suggest(value: Any, path: str) -> dict[str, Any]:
    """A starting range around the run's value: integers from half to double, small rates a decade either
    side, fractions from half to one and a half."""
    if isinstance(value, bool) or isinstance(value, str) or value is None:
        choices = "true, false" if isinstance(value, bool) else (value or "")
        return {"kind": "choice", "low": "", "high": "", "step": "", "choices": choices}
    if isinstance(value, int):
        low, high = max(1, value // 2), max(2, value * 2)
        return {"kind": "int_uniform", "low": low, "high": high, "step": "", "choices": f"{low}, {value}, {high}"}
    if 0 < value < 0.05:  # a rate: a decade either side
        return {
            "kind": "log_uniform",
            "low": _short(value / 10),
            "high": _short(value * 10),
            "step": "",
            "choices": _short(value),
        }
    if 0 < value <= 1:  # a fraction: half to one and a half, never past 1
        return {
            "kind": "uniform",
            "low": _short(value / 2),
            "high": _short(min(1.0, value * 1.5)),
            "step": "",
            "choices": _short(value),
        }
    return {
        "kind": "uniform",
        "low": _short(value - 1),
        "high": _short(value + 1),
        "step": "",
        "choices": _short(value),
    }


def _short(value: float) -> str:
    return f"{value:.6g}"


def parse_number(text: str) -> Any:
    """``"16"`` -> 16, ``"1e-3"`` -> 0.001; anything else stays text (the document says what is wrong)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_choices(text: str) -> list[Any]:
    """``"16, 32, relu, true"`` -> ``[16, 32, "relu", True]``: JSON numbers, true/false/null, else strings."""
    values: list[Any] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:  # a choice is one value: anything that nests is text (and "[[[[..." never reaches the parser)
            value = jsonlimits.loads(part, max_depth=0, refuse_nul=True)
        except jsonlimits.JSONLimitError:
            value = part
        values.append(value if value is None or isinstance(value, (bool, int, float, str)) else part)
    return values
