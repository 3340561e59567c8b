"""Whether a model is a classifier or a regressor, from its config alone (no numpy, no Keras).

The evaluation report decides with it which figures to compute; the pages, which Plotly bundle a run's page
needs (a classifier's confusion matrix is a heatmap).
"""

from __future__ import annotations

# Losses that say what the model is; anything else (a custom loss) leaves it to the output layer.
CLASSIFICATION_LOSSES = ("crossentropy", "hinge", "focal")
REGRESSION_LOSSES = {
    "mse", "mae", "mape", "msle", "huber", "logcosh", "log_cosh", "poisson", "cosine_similarity",
    "mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "huber_loss",
}  # fmt: skip
CLASSIFICATION_ACTIVATIONS = {"softmax", "sigmoid"}


def _snake(name: str) -> str:
    out = "".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in name).lstrip("_")
    return out.replace("__", "_")


def task_for(task: str | None, loss: str, activation: str) -> tuple[str, str]:
    """``(task, why)``: the config's ``experiment.task``, else the loss, else the output layer's activation."""
    if task is not None:
        return task, "the config (experiment.task)"
    snake = _snake(loss) if any(ch.isupper() for ch in loss) else loss.lower()
    if any(marker in snake.replace("_", "") for marker in CLASSIFICATION_LOSSES):
        return "classification", f"the loss ({loss})"
    if activation in CLASSIFICATION_ACTIVATIONS:
        if snake in REGRESSION_LOSSES:
            return "classification", (
                f"the output layer ({activation}); the loss ({loss}) is a regression loss, so this is a guess: "
                'set experiment.task to "regression" to say otherwise'
            )
        return "classification", f"the output layer ({activation})"
    if snake in REGRESSION_LOSSES:
        return "regression", f"the loss ({loss})"
    return "regression", f"the output layer ({activation or 'no activation'}) and the loss ({loss})"
