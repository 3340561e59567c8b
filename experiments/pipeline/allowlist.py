"""What a config may reach beyond its run: modules to import, hosts to post to.

Configs can come from the web, so the engine never imports a module a config names unless an
administrator listed it in ``GYMNOS_CALLBACK_MODULES`` (comma-separated module names; by default
only ``experiments.pipeline.hooks``, Gymnos' own logging hooks; empty if set empty):
``GYMNOS_CALLBACK_MODULES=team_hooks,experiments.pipeline.hooks``.

Nor does it post (``remote_monitor``) to a host that is not in ``GYMNOS_REMOTE_MONITOR_HOSTS``
(comma-separated ``host`` or ``host:port``; default ``localhost,127.0.0.1,::1``; ``*`` allows
any host): a config must not turn a worker into a client of the services on its network.

Alert webhooks (the ``alerts`` app) are checked the same way against their own list, ``GYMNOS_WEBHOOK_HOSTS``
(empty by default: no webhook until an administrator lists its host), given here as ``WEBHOOKS``.
"""

from __future__ import annotations

import importlib
import ipaddress
import os
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import certifi
import urllib3
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from .errors import ComponentError, did_you_mean

VARIABLE = "GYMNOS_CALLBACK_MODULES"
DEFAULT_MODULES = "experiments.pipeline.hooks"  # Gymnos' own hooks: they only write to the run's log
HOSTS_VARIABLE = "GYMNOS_REMOTE_MONITOR_HOSTS"
DEFAULT_HOSTS = "localhost,127.0.0.1,::1"


@dataclass(frozen=True)
class Hosts:
    """One allowlist of hosts: the environment variable that holds it, its default, and who posts (for messages)."""

    variable: str
    default: str
    who: str


REMOTE_MONITOR = Hosts(HOSTS_VARIABLE, DEFAULT_HOSTS, "remote_monitor")
WEBHOOKS = Hosts("GYMNOS_WEBHOOK_HOSTS", "", "an alert's webhook")


def allowed_modules() -> list[str]:
    """The modules ``lambda_callback`` may import from: ``GYMNOS_CALLBACK_MODULES``, comma-separated."""
    return [name.strip() for name in os.environ.get(VARIABLE, DEFAULT_MODULES).split(",") if name.strip()]


def module_problem(path: object) -> str | None:
    """What is wrong with a hook's dotted ``path`` before anything is imported, or None.

    Naming ``os.system`` is an error, not a call: the module is checked against the allowlist.
    """
    if not isinstance(path, str) or "." not in path or not all(part.isidentifier() for part in path.split(".")):
        return f'must be a dotted path to a function, such as "team_hooks.notify", got {path!r}'
    module_name = path.rsplit(".", 1)[0]
    allowed = allowed_modules()
    if module_name not in allowed:
        now = f"it lists: {', '.join(allowed)}{did_you_mean(module_name, allowed)}" if allowed else "it is empty"
        return (
            f"cannot use '{path}': hooks may only come from modules listed in the {VARIABLE} "
            f"environment variable ({now}); an administrator may add '{module_name}' there once they trust every "
            "function in it"
        )
    return None


def import_allowed(path: str, key: str) -> Callable[..., Any]:
    """Return the function at dotted ``path`` if its module is allowed; ``ComponentError`` at ``key`` otherwise."""
    problem = module_problem(path)
    if problem:
        raise ComponentError(problem, key)
    module_name, function_name = path.rsplit(".", 1)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # re-raised: any import failure is the config's problem to report
        raise ComponentError(
            f"cannot import module '{module_name}' (listed in {VARIABLE}): {type(exc).__name__}: {exc}", key
        ) from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        names = [name for name in dir(module) if not name.startswith("_") and callable(getattr(module, name))]
        raise ComponentError(
            f"module '{module_name}' has no function '{function_name}'{did_you_mean(function_name, names)}", key
        )
    return function


def allowed_hosts(hosts: Hosts = REMOTE_MONITOR) -> list[str]:
    """``GYMNOS_REMOTE_MONITOR_HOSTS`` (or ``hosts``' variable) as written: ``host``, ``host:port``,
    ``[ipv6]:port`` or ``*`` entries."""
    raw = os.environ.get(hosts.variable)
    entries = (hosts.default if raw is None else raw).split(",")
    return [entry.strip().lower() for entry in entries if entry.strip()]


def _entries(hosts: Hosts) -> list[tuple[str, int | None]]:
    """Each entry as ``(host, port or None)``: ``gymnos:8000``, ``[::1]:8000``, ``::1``, ``10.0.0.1``."""
    parsed = []
    for entry in allowed_hosts(hosts):
        if entry.startswith("["):
            host, _, rest = entry[1:].partition("]")
            port = rest.removeprefix(":")
        elif entry.count(":") == 1:
            host, _, port = entry.partition(":")
        else:
            host, port = entry, ""
        parsed.append((host.rstrip("."), int(port) if port.isdigit() else None))
    return parsed


@dataclass(frozen=True)
class Target:
    """Where a URL leads, read the way the HTTP client (urllib3) reads it."""

    scheme: str
    host: str  # lower case, no trailing dot, IPv6 without brackets
    port: int
    path: str


def _address(text: str) -> str | None:
    """An IP address in its standard spelling (an IPv4-mapped IPv6 address as its IPv4), else None."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def parse_target(url: str) -> Target:
    """``url`` as the client will connect to it; ``ValueError`` saying what would make it go elsewhere."""
    if "\\" in url:
        raise ValueError(f"must not contain a backslash (clients disagree on where it sends you), got {url!r}")
    try:
        parts = parse_url(url)
    except LocationParseError as exc:
        raise ValueError(f"is not a URL the client can read ({exc}), got {url!r}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"must be an http:// or https:// URL, got {url!r}")
    if parts.auth is not None:
        raise ValueError(f"must not hold a user name or password (user@host), got {url!r}")
    host = (parts.host or "").lower().strip("[]").rstrip(".")
    if not host:
        raise ValueError(f"must name a host, got {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return Target(parts.scheme, host, port, parts.request_uri)


def _resolve(host: str, port: int, seconds: float | None = None) -> list[str]:
    """The addresses ``host`` resolves to now (standard spelling); ``seconds`` bounds the wait."""
    if _address(host) is not None:
        return [str(_address(host))]
    lookup = lambda: [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]  # noqa: E731
    try:
        if seconds is None:
            found = lookup()
        else:
            with ThreadPoolExecutor(max_workers=1) as pool:
                found = pool.submit(lookup).result(timeout=seconds)
    except (OSError, TimeoutError):
        return []
    return [str(_address(address)) for address in found if _address(address) is not None]


def _names(port: int, hosts: Hosts) -> set[str]:
    """The hosts the list allows for ``port``, as written (addresses in their standard spelling)."""
    return {_address(host) or host for host, pinned in _entries(hosts) if pinned is None or pinned == port}


def _is_listed(target: Target, hosts: Hosts) -> bool:
    return (_address(target.host) or target.host) in _names(target.port, hosts)


def _problem(target: Target, hosts: Hosts, reason: str = "") -> str:
    listed = f"it lists: {', '.join(allowed_hosts(hosts))}" if allowed_hosts(hosts) else "it is empty"
    with_port = f"[{target.host}]:{target.port}" if ":" in target.host else f"{target.host}:{target.port}"
    return (
        f"cannot post to {target.host}{reason}: {hosts.who} may only post to hosts listed in the {hosts.variable} "
        f"environment variable ({listed}); an administrator may add '{target.host}' or '{with_port}' there"
    )


def connect_address(url: str, seconds: float | None = None, hosts: Hosts = REMOTE_MONITOR) -> tuple[Target, str]:
    """``(target, address)``: the address to connect to for ``url``, resolved now and checked against the list.

    A URL may post when its host (as the HTTP client reads it) resolves to an address that a listed entry
    resolves to; the caller connects to the returned address itself, so a name that resolves elsewhere a
    moment later (DNS rebinding) changes nothing. Raises ``PermissionError`` saying why not.
    """
    try:
        target = parse_target(url)
    except ValueError as exc:
        raise PermissionError(f"cannot post to this URL: it {exc}") from None
    resolved = _resolve(target.host, target.port, seconds)
    if "*" in allowed_hosts(hosts):
        if not resolved:
            raise PermissionError(f"cannot post to {target.host}: the name does not resolve")
        return target, resolved[0]
    if _is_listed(target, hosts):
        if not resolved:  # a listed name this machine cannot resolve: the worker's machine may
            raise PermissionError(f"cannot post to {target.host}: the name does not resolve here")
        return target, resolved[0]
    addresses = {found for name in _names(target.port, hosts) for found in _resolve(name, target.port, seconds)}
    for found in resolved:
        if found in addresses:
            return target, found
    if not resolved:
        raise PermissionError(_problem(target, hosts, " (the name does not resolve here)"))
    shown = "" if resolved == [target.host] else f" (it resolves to {', '.join(sorted(set(resolved)))})"
    raise PermissionError(_problem(target, hosts, shown))


def url_problem(url: str, hosts: Hosts = REMOTE_MONITOR) -> str | None:
    """What stops ``remote_monitor`` posting to ``url``, or None; the worker checks again at each post.

    A listed name need not resolve where the config is checked (the web server's machine), only on the
    worker's; any other host must resolve now to an address the list allows.
    """
    try:
        target = parse_target(url)
    except ValueError as exc:
        return f"cannot post to this URL: it {exc}"
    if "*" in allowed_hosts(hosts) or _is_listed(target, hosts):
        return None
    try:
        connect_address(url, seconds=2.0, hosts=hosts)
    except PermissionError as exc:
        return str(exc)
    return None


def post(
    url: str,
    body: bytes,
    content_type: str,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
    hosts: Hosts = REMOTE_MONITOR,
) -> None:
    """POST ``body`` to ``url`` at the address the allowlist checked, resolved now and pinned: the name cannot lead
    elsewhere between the check and the connection (DNS rebinding). Redirects are not followed (they could lead past
    the list). Raises ``PermissionError`` (not allowed), ``ValueError`` (a redirect, or an answer of 400 or more),
    or urllib3's and the socket's errors."""
    target, address = connect_address(url, hosts=hosts)
    default_port = 443 if target.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    sent = {
        **(headers or {}),
        "Host": host if target.port == default_port else f"{host}:{target.port}",
        "Content-Type": content_type,
    }
    limit = urllib3.Timeout(total=timeout)
    if target.scheme == "https":
        pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
            address,
            target.port,
            timeout=limit,
            retries=False,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, target.port, timeout=limit, retries=False)
    with pool:
        response = pool.urlopen("POST", target.path, body=body, headers=sent, redirect=False)
    if response.get_redirect_location():
        location = response.headers.get("Location")
        raise ValueError(f"it answered with a redirect to {location}, which is not followed")
    if response.status >= 400:
        raise ValueError(f"it answered {response.status} {response.reason}")
