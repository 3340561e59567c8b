"""JSON limits in linear time: the worst text of the largest size each reader accepts is answered quickly.

``jsonlimits.loads`` reads launch bodies, PATCHes, RemoteMonitor posts and config files (1 MiB) and
evaluation.json (8 MiB, shown to share-link visitors). Its depth check once ran a regex that was
quadratic on an unterminated run of ``\\"``: 80 KB held the web process for 20 seconds.
"""

import json
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from experiments.curation import sidecar
from experiments.evaluation import report
from experiments.forms import EPOCH_POST_BYTES
from experiments.index.sync import sync_trainings
from experiments.models import Execution, ShareLink
from experiments.pipeline import jsonlimits
from experiments.pipeline.jsonlimits import JSONLimitError, depth_of_text, loads
from sweeps.forms import parse_choices
from tests.bounds import FUZZ, assert_quick
from tests.folders import login, write_execution

SIZES = {"a post or a config (1 MiB)": jsonlimits.MAX_BYTES, "an evaluation.json (8 MiB)": report.MAX_BYTES}


def fill(head: bytes, unit: bytes, size: int, tail: bytes = b"") -> bytes:
    """``head``, ``unit`` repeated, ``tail``: exactly ``size`` bytes."""
    body = unit * ((size - len(head) - len(tail)) // len(unit))
    return (head + body + tail).ljust(size, b" ")[:size]


def ordinary(size: int) -> bytes:
    """A report-like document of ``size`` bytes: numbers, names and short lists."""
    row = json.dumps({"class": "setosa", "precision": 0.96, "recall": 0.93, "curve": [[0.1, 0.2], [0.3, 0.9]]})
    return fill(b'{"rows": [', row.encode() + b",", size - 2, b"{}]}")


WORST = {
    "an unterminated run of escaped quotes": lambda size: fill(b'{"notes": "', b'\\"', size),
    "a terminated run of escaped quotes": lambda size: fill(b'{"notes": "', b'\\"', size, b'"}'),
    "only opening brackets": lambda size: fill(b"", b"[", size),
    "brackets that close": lambda size: fill(b"", b"[", size // 2) + fill(b"", b"]", size - size // 2),
    "only quotes": lambda size: fill(b"", b'"', size),
    "only backslashes": lambda size: fill(b"", b"\\", size),
    "a quote before each bracket": lambda size: fill(b"", b'"[', size),
    "short strings nested": lambda size: fill(b"", b'["a",', size),
    "one huge number": lambda size: fill(b"[", b"7", size, b"]"),
    "one huge fraction": lambda size: fill(b"[0.", b"7", size, b"]"),
    "many numbers": lambda size: fill(b"[", b"1,", size, b"1]"),
    "many empty lists": lambda size: fill(b"[", b"[],", size, b"[]]"),
    "unicode escapes": lambda size: fill(b'["', b"\\u00e9", size, b'"]'),
}


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_the_worst_texts_of_the_largest_size_are_answered_as_fast_as_an_ordinary_one(size):
    worst = {name: build(size) for name, build in WORST.items()}
    assert {len(text) for text in worst.values()} == {size}
    assert_quick(lambda data: loads(data, max_bytes=size), worst, ordinary(size))


# A NUL's search (``refuse_nul``) walks every value the text held: the most values in 1 MiB, with the NUL last.
WORST_FOR_NUL = {
    "many empty lists": lambda size: fill(b"[", b"[],", size, b'"\\u0000"]'),
    "many short strings": lambda size: fill(b"[", b'"a",', size, b'"\\u0000"]'),
    "many one-key objects": lambda size: fill(b"[", b'{"a":0},', size, b'{"\\u0000":0}]'),
    "lists 64 deep, many times": lambda size: fill(b"[", b"[" * 63 + b"]" * 63 + b",", size, b'"\\u0000"]'),
    "a NUL escape in every string but none decoded": lambda size: fill(b"[", b'"\\\\u0000",', size, b'"a"]'),
}


def _refused_or_parsed(data: bytes) -> object:
    try:
        return loads(data, refuse_nul=True)
    except jsonlimits.NulInJSON as exc:
        return exc.path


def test_looking_for_a_nul_in_the_worst_texts_of_1_mib_is_as_fast_as_an_ordinary_one():
    size = jsonlimits.MAX_BYTES
    worst = {name: build(size) for name, build in WORST_FOR_NUL.items()}
    assert {len(text) for text in worst.values()} == {size}
    assert all(isinstance(_refused_or_parsed(text), list) for name, text in worst.items() if "none" not in name)
    assert_quick(_refused_or_parsed, worst, ordinary(size).replace(b'"setosa"', b'"\\u0000"', 1))


@pytest.fixture
def curator_client(owner):
    owner.user_permissions.add(*Permission.objects.filter(codename__in=["add_execution", "change_execution"]))
    return login(owner)


def patch_notes(client, run, body):
    return client.patch(f"/api/executions/{run.pk}", body, content_type="application/json")


def launch(client, run, body):
    return client.post("/api/executions", body, content_type="application/json")


def post_epoch(client, run, body):
    client.post("/runs/remote/", {"experiment": "notebook", "title": "Notebook run", "epochs": 3})
    token = Execution.objects.get(experiment__name="notebook").publish_tokens.get().token
    return Client().post(f"/publish/epoch/end/{token}/", {"data": body.decode()})


ENTRY_POINTS = {
    "a PATCH (256 KiB)": (patch_notes, sidecar.MAX_BYTES),
    "a launch (1 MiB)": (launch, jsonlimits.MAX_BYTES),
    "a RemoteMonitor post (64 KiB)": (post_epoch, EPOCH_POST_BYTES),
}


@pytest.mark.django_db
@pytest.mark.parametrize("send, size", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
def test_a_body_of_escaped_quotes_is_refused_at_once(curator_client, seed_run, send, size):
    """100 KB of an unterminated run of \\" in a PATCH took 30 s, 64 KiB posted by RemoteMonitor 14 s."""
    body = fill(b'{"epoch": 1, "notes": "', b'\\"', size - 512)
    started = time.monotonic()
    response = send(curator_client, seed_run, body)
    assert response.status_code == 400
    assert b"Unterminated string" in response.content
    assert time.monotonic() - started < 5


@pytest.mark.django_db
def test_a_share_link_visitor_gets_the_reason_for_a_planted_evaluation_json_at_once(root, seed_run, owner):
    """An 80 KB evaluation.json froze the web process for 20 s; the largest one read (8 MiB) answers at once."""
    (Path(seed_run.folder_path) / "evaluation.json").write_bytes(fill(b'{"notes": "', b'\\"', report.MAX_BYTES))
    link = ShareLink.objects.create(kind=ShareLink.Kind.EXECUTION, execution=seed_run, created_by=owner)
    started = time.monotonic()
    answer = Client().get(f"/s/{link.token}/evaluation.json").json()
    assert time.monotonic() - started < 5
    assert not answer["available"]
    assert "Unterminated string" in answer["reason"]


def test_an_integer_too_long_to_convert_is_a_refusal_not_a_crash():
    with pytest.raises(JSONLimitError, match="an integer of more than 4,300 digits"):
        loads(b"[" + b"7" * 5000 + b"]")


# --- fuzzing ----------------------------------------------------------------------------------------

SHAPES = st.text(alphabet='[]{}"\\,: a1', max_size=2000) | st.binary(max_size=2000)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=40,
)


def depth_of(value) -> int:
    if isinstance(value, dict):
        value = list(value.values())
    return 1 + max(map(depth_of, value), default=0) if isinstance(value, list) else 0


@FUZZ
@given(SHAPES)
def test_any_text_is_parsed_or_refused_with_a_reason(text):
    try:
        loads(text)
    except JSONLimitError as exc:
        assert str(exc).startswith("the JSON ")


@FUZZ
@given(VALUES, st.integers(min_value=1, max_value=6))
def test_a_document_is_read_back_exactly_and_its_depth_counted_as_it_nests(value, limit):
    text = json.dumps(value)
    assert depth_of_text(text.encode()) == depth_of(value)
    if depth_of(value) > limit:
        with pytest.raises(JSONLimitError, match=f"nested {depth_of(value)} deep; at most {limit} levels"):
            loads(text, max_depth=limit)
    else:
        assert loads(text, max_depth=limit) == value


@pytest.mark.django_db
def test_a_metrics_json_with_an_integer_too_long_fails_its_run_and_the_sync_goes_on(root):
    """json.loads raises a plain ValueError past 4,300 digits: it stopped the whole sync."""
    write_execution(root, name="bad", metrics=b'{"metrics": {"loss": [' + b"7" * 5000 + b"]}}")
    write_execution(root, name="good")
    assert sync_trainings(root).errors == 1
    assert Execution.objects.get(folder_name="good").status == Execution.Status.SUCCEEDED
    bad = Execution.objects.get(folder_name="bad")
    assert bad.status == Execution.Status.FAILED
    assert bad.error.startswith("metrics.json: holds an integer of more than 4,300 digits")


def test_a_sweep_choice_nested_deep_is_taken_as_text_not_a_crash():
    """The sweep form read each choice with json.loads: '[' * 100,000 was a RecursionError (a 500)."""
    assert parse_choices("16, " + "[" * 100_000 + ", relu, true") == [16, "[" * 100_000, "relu", True]
