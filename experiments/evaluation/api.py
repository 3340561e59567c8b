"""This feature's API operations, attached to the routers of experiments/api (which imports this module)."""
