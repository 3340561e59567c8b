"""What a browser posts to the dashboard's forms."""

import json

from experiments.forms import fields_from_config


def form_for(config, base=None, **fields):
    """What the browser posts: the fields as the page filled them from ``base``, changed by ``fields``."""
    base = config if base is None else base
    data = {k: v for k, v in fields_from_config(base).items() if v not in (None, "")}
    data.update(fields)
    data["config"] = json.dumps(config)
    data["base"] = json.dumps(base)
    return data
