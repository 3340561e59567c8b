"""``/api/sweeps``: launch, follow and cancel sweeps (registered in experiments/api/__init__.py)."""

from ninja import Router

router = Router(tags=["sweeps"])
