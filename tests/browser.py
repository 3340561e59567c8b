"""Helpers for the browser tests (Playwright driving Debian's Chromium); the ``browser`` fixture is in conftest.

def test_something(live_server, browser, owner):
    page = logged_in(browser, live_server.url, owner)
    shot = Shots("curation")          # test-artifacts/screenshots/curation-01-<name>.png, ...
    page.goto("/"); shot(page, "experiments")
"""

from typing import Any

from tests.helpers import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = ROOT / "test-artifacts" / "screenshots"
OWNER_PASSWORD = "pw-olivia-123"  # the owner fixture's (tests/conftest.py)


class Shots:
    """Saves a full-page screenshot per step: ``<prefix>-01-login.png``, ``<prefix>-02-experiments.png``, ...

    In test-artifacts/screenshots/, or in ``folder`` too when one is given (the docs' screenshots).
    """

    def __init__(self, prefix: str = "team", folder: Any = None) -> None:
        self.prefix = prefix
        self.folders = [SHOTS, *([folder] if folder is not None else [])]
        for where in self.folders:
            where.mkdir(parents=True, exist_ok=True)
            for old in where.glob(f"{prefix}-*.png"):
                old.unlink()
        self.count = 0

    def __call__(self, page: Any, name: str) -> None:
        self.count += 1
        for where in self.folders:
            path = where / f"{self.prefix}-{self.count:02d}-{name}.png"
            page.screenshot(path=str(path), full_page=True)
            if where is not SHOTS:  # kept in the repository: 256 colours, a third of the bytes, reads the same
                from PIL import Image

                Image.open(path).convert("RGB").quantize(256).save(path, optimize=True)


def logged_in(browser: Any, base_url: str, user: Any, password: str = OWNER_PASSWORD) -> Any:
    """A page of a fresh browser context, logged in as ``user`` through the login form."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto("/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", password)
    page.click("button:has-text('Log in')")
    page.wait_for_url(base_url + "/")
    return page
