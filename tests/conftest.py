"""Shared fixtures: a real headless Chromium page (Debian's ``/usr/bin/chromium``, never a downloaded browser)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture()
def browser_page(tmp_path: Path) -> Iterator[tuple[object, list[str], list[str]]]:
    """A page in a fresh Chromium profile, with the console errors and request URLs it produces."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            page = context.new_page()
            errors: list[str] = []
            requests: list[str] = []
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            context.on("request", lambda request: requests.append(request.url))
            yield page, errors, requests
        finally:
            context.close()


