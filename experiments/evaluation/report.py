"""Reading a run's evaluation.json for the dashboard and the API, through the one bounded reader (``files``).

    document = load(execution)          # the report as a dict, NaN/Infinity as None; or Unavailable(why)
    panel(execution)                    # what the execution page's Evaluation panel polls
    comparison(executions)              # each run's confusion matrix or predicted-vs-actual points, for compare

The file comes from a run folder, which anyone with a training machine can write: it is bounded in
size and depth, parsed strictly, and only the parts a page draws are passed on to the compare page.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

from experiments import files
from experiments.display import run_label
from experiments.models import LIVE, Execution, Status
from experiments.pipeline import jsonlimits
from experiments.pipeline.evaluation.report import FILE_NAME, HEADLINE

MAX_BYTES = 8 << 20  # the engine writes well under 2 MiB even for 1,000 classes (its curves and plots are bounded)
COMPARE_POINTS = 1_000  # predicted-vs-actual points per run on the compare page


class Unavailable(Exception):
    """The run has no readable report; the message says why, for a person."""


def _clean(value: Any) -> Any:
    """NaN and infinities as None, so the answer is JSON a browser parses (nesting is bounded already)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): _clean(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clean(item) for item in value]
    return value


def _missing_reason(execution: Execution) -> str:
    if execution.status == Status.QUEUED or not execution.folder_path:
        return "The run has not started yet; its evaluation report is written when it ends."
    if execution.status in LIVE:
        return "The evaluation report is written when the run ends."
    if execution.status == Status.MISSING:
        return "The run's folder is no longer under the trainings root, so its report cannot be read."
    if execution.status == Status.DELETED:
        return "The run is in the trash; restore it to see its report."
    if execution.status in (Status.FAILED, Status.CANCELLED):
        return f"The run {execution.status} before an evaluation report was written."
    return (
        "This run has no evaluation.json: it was made before Gymnos wrote one, or writing it failed (its log "
        "says why). `python manage.py evaluate <execution folder>` makes one from its model.h5."
    )


def load(execution: Execution) -> dict[str, Any]:
    """The run's evaluation.json, cleaned; ``Unavailable`` saying why there is none to show."""
    folder = files.execution_folder(execution)
    try:
        if folder is None:
            raise FileNotFoundError(FILE_NAME)
        data = files.read_file(folder, FILE_NAME, MAX_BYTES)
    except files.TooLarge as exc:
        raise Unavailable(f"{FILE_NAME} {exc}.") from None
    except (FileNotFoundError, files.Refused):
        raise Unavailable(_missing_reason(execution)) from None
    except OSError as exc:
        raise Unavailable(f"{FILE_NAME} cannot be read: {exc.strerror or exc}.") from exc
    try:
        document = jsonlimits.loads(data, max_bytes=MAX_BYTES, what="evaluation.json")
    except jsonlimits.JSONLimitError as exc:
        raise Unavailable(f"{exc}.") from exc
    if not isinstance(document, dict):
        raise Unavailable(f"evaluation.json holds a JSON {type(document).__name__}; expected an object.")
    return _clean(document)


def panel(execution: Execution) -> dict[str, Any]:
    """``{"available": true, "report": {...}}`` or ``{"available": false, "reason": "..."}``, and whether to poll."""
    live = execution.status in LIVE
    try:
        return {"available": True, "live": live, "report": load(execution)}
    except Unavailable as exc:
        return {"available": False, "live": live, "reason": str(exc)}


def _numbers(value: Any) -> TypeGuard[list[Any]]:
    return isinstance(value, list) and all(
        isinstance(item, (int, float)) and not isinstance(item, bool) or item is None for item in value
    )


def _matrix(value: Any) -> dict[str, Any] | None:
    """A confusion matrix as the compare page draws it, or None when the file's is not square numbers."""
    if not isinstance(value, dict):
        return None
    labels, counts, normalized = value.get("labels"), value.get("counts"), value.get("normalized")
    if not isinstance(labels, list):
        return None
    size = len(labels)
    for grid in (counts, normalized):
        if (
            not isinstance(grid, list)
            or len(grid) != size
            or not all(_numbers(row) and len(row) == size for row in grid)
        ):
            return None
    return {"labels": [str(label) for label in labels], "counts": counts, "normalized": normalized}


def _points(value: Any) -> dict[str, Any] | None:
    """Predicted against actual, cut to COMPARE_POINTS evenly spaced points."""
    if not isinstance(value, dict):
        return None
    actual, predicted = value.get("actual"), value.get("predicted")
    if not _numbers(actual) or not _numbers(predicted) or len(actual) != len(predicted):
        return None
    step = max(1, math.ceil(len(actual) / COMPARE_POINTS))
    total = value.get("total")
    return {
        "actual": actual[::step],
        "predicted": predicted[::step],
        "total": total if isinstance(total, int) else len(actual),
        "shown": len(actual[::step]),
    }


def comparison(executions: list[Execution]) -> dict[str, Any]:
    """Per run: its headline numbers and its confusion matrix or predicted-vs-actual points (or why not)."""
    runs = []
    for execution in executions:
        run: dict[str, Any] = {
            "id": execution.pk,
            "label": run_label(execution),
            "headline": {name: execution.evaluation[name] for name in HEADLINE if name in (execution.evaluation or {})},
        }
        try:
            document = load(execution)
        except Unavailable as exc:
            run["reason"] = str(exc)
            runs.append(run)
            continue
        run["task"] = document.get("task") if document.get("task") in ("classification", "regression") else None
        run["split"] = document.get("split") if isinstance(document.get("split"), str) else None
        classification, regression = document.get("classification"), document.get("regression")
        if run["task"] == "classification" and isinstance(classification, dict):
            run["confusion"] = _matrix(classification.get("confusion_matrix"))
            if run["confusion"] is None:
                run["reason"] = "No confusion matrix in its report (too many classes, or none could be computed)."
        elif run["task"] == "regression" and isinstance(regression, dict):
            run["points"] = _points(regression.get("points"))
            if run["points"] is None:
                run["reason"] = "No predicted-vs-actual points in its report."
        else:
            run["reason"] = "Its report holds no predictions (see its page for why)."
        runs.append(run)
    return {"runs": runs, "headline": list(HEADLINE)}


__all__ = ["MAX_BYTES", "Unavailable", "load", "panel", "comparison"]
