"""remote_monitor's URL is read as the HTTP client reads it, and the post goes to the address that was checked.

The failure this guards against: ``http://127.0.0.2:9999\\@127.0.0.1`` passed the check (which read
127.0.0.1) while the client connected to 127.0.0.2 and sent the config's headers there.
"""

import pytest

from experiments.pipeline import ConfigError, load_config, run_experiment
from experiments.pipeline.allowlist import connect_address
from tests.helpers import tiny


def problem(root, **callback):
    with pytest.raises(ConfigError) as caught:
        load_config(tiny(callbacks=[{"type": "remote_monitor", "root": root, **callback}]))
    [found] = caught.value.problems
    return found


@pytest.fixture(autouse=True)
def default_hosts(monkeypatch):
    monkeypatch.delenv("GYMNOS_REMOTE_MONITOR_HOSTS", raising=False)


@pytest.mark.parametrize(
    "root, said",
    [
        ("http://127.0.0.2:9999\\@127.0.0.1", "must not contain a backslash"),
        ("http://anyone@127.0.0.1:9000", "must not hold a user name or password"),
        ("http://localhost:8000@internal.example", "must not hold a user name or password"),
        ("ftp://127.0.0.1", "must be an http:// or https:// URL"),
    ],
)
def test_urls_a_client_could_read_otherwise_are_refused(root, said):
    found = problem(root)
    assert found.path == "training.callbacks[0].root"
    assert said in found.message


@pytest.mark.parametrize("root", ["http://10.0.0.5", "http://169.254.169.254", "http://[fd00::1]:8000"])
def test_addresses_off_the_list_are_refused_and_the_variable_is_named(root):
    assert "GYMNOS_REMOTE_MONITOR_HOSTS" in problem(root).message


def test_a_decimal_or_hex_address_is_judged_by_where_it_leads(monkeypatch):
    # Both spell 127.0.0.1, which the default list allows: the check agrees with the client.
    for root in ("http://2130706433:9000", "http://0x7f.1:9000"):
        assert connect_address(root + "/publish/")[1] == "127.0.0.1"
    monkeypatch.setenv("GYMNOS_REMOTE_MONITOR_HOSTS", "10.1.2.3")
    for root in ("http://2130706433:9000", "http://0x7f.1:9000"):
        assert "it resolves to 127.0.0.1" in problem(root).message


@pytest.mark.parametrize(
    "root, address",
    [
        ("http://[::1]:9000", "::1"),
        ("http://[0:0:0:0:0:0:0:1]:9000", "::1"),
        ("http://[::ffff:127.0.0.1]:9000", "127.0.0.1"),
        ("http://localhost.:9000", "127.0.0.1"),
        ("http://127.0.0.1.:9000", "127.0.0.1"),
    ],
)
def test_ipv6_spellings_and_trailing_dots_are_the_same_host(root, address):
    load_config(tiny(callbacks=[{"type": "remote_monitor", "root": root}]))
    assert connect_address(root + "/publish/")[1] == address


def test_a_name_that_resolves_outside_the_list_is_refused_when_posting(monkeypatch):
    monkeypatch.setenv("GYMNOS_REMOTE_MONITOR_HOSTS", "127.0.0.2")
    found = problem("http://localhost:9000")  # resolves to 127.0.0.1 here, which is not listed
    assert "cannot post to localhost (it resolves to 127.0.0.1" in found.message
    with pytest.raises(PermissionError, match="it resolves to 127.0.0.1"):
        connect_address("http://localhost:9000/publish/")


@pytest.mark.training
def test_the_post_reaches_the_checked_address_with_the_hosts_name(trainings, cache_dir, receiver):
    port = receiver.root.rsplit(":", 1)[1]
    config = load_config(tiny(epochs=1, callbacks=[{"type": "remote_monitor", "root": f"http://localhost.:{port}"}]))
    result = run_experiment(config, trainings, cache_dir)
    assert result.succeeded, result.error
    [post] = receiver.received
    assert post["path"] == "/publish/epoch/end/"
    assert post["headers"]["Host"] == f"localhost:{port}"
