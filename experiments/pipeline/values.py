"""Checks for the values in a component's spec. Each returns what is wrong, or None.

>>> positive_int(0)
'must be a positive whole number, got 0'
"""

from __future__ import annotations

import math
from urllib.parse import urlsplit


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def number(value):
    if not is_number(value):
        return f"must be a number, got {value!r}"


def positive_number(value):
    if not (is_number(value) and value > 0):
        return f"must be a number above 0, got {value!r}"


def non_negative_number(value):
    if not (is_number(value) and value >= 0):
        return f"must be a number of at least 0, got {value!r}"


def optional_number(value):
    if value is not None and not is_number(value):
        return f"must be a number or null, got {value!r}"


def fraction(value):
    if not (is_number(value) and 0 <= value <= 1):
        return f"must be a number from 0 to 1, got {value!r}"


def open_fraction(value):
    if not (is_number(value) and 0 < value < 1):
        return f"must be a number between 0 and 1 (exclusive), got {value!r}"


def decay_factor(value):
    if not (is_number(value) and 0 < value <= 1):
        return f"must be a number above 0 and at most 1 (the fraction of the rate kept), got {value!r}"


def positive_int(value):
    if not (is_int(value) and value > 0):
        return f"must be a positive whole number, got {value!r}"


def non_negative_int(value):
    if not (is_int(value) and value >= 0):
        return f"must be a whole number of at least 0, got {value!r}"


def boolean(value):
    if not isinstance(value, bool):
        return f"must be true or false, got {value!r}"


def non_empty_string(value):
    if not (isinstance(value, str) and value.strip()):
        return f"must be a non-empty string, got {value!r}"


def one_of(*choices):
    def check(value):
        if value not in choices:
            return f"must be one of {', '.join(map(str, choices))}, got {value!r}"

    return check


def update_freq(value):
    if value not in ("epoch", "batch") and positive_int(value):
        return f'must be "epoch", "batch" or a positive whole number of batches, got {value!r}'


def profile_batch(value):
    if is_int(value) and value >= 0:
        return None
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(is_int(item) and item > 0 for item in value)
        and value[0] <= value[1]
    ):
        return None
    return f"must be 0 (off), a batch number, or [first, last] batch numbers, got {value!r}"


def one_character(value):
    if not (isinstance(value, str) and len(value) == 1):
        return f'must be a single character such as "," or ";", got {value!r}'


def url(value):
    if not isinstance(value, str):
        return f'must be a URL such as "http://localhost:8000", got {value!r}'
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f'must be an http:// or https:// URL with a host, such as "http://localhost:8000", got {value!r}'


def url_path(value):
    if not (isinstance(value, str) and value.startswith("/")):
        return f'must be a path starting with "/", such as "/publish/epoch/end/", got {value!r}'


def headers(value):
    if value is not None and not (isinstance(value, dict) and all(isinstance(item, str) for item in value.values())):
        return f'must be an object of header names to string values, such as {{"Authorization": "Token ..."}}, got {value!r}'
