"""Shared test setup: where the public fixtures are, and a real headless Chromium page (Debian's chromium)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

# The public fixtures live in ../shared beside the checkout (CI lays a copy there); TRACEGEN_FIXTURES overrides.
FIXTURES = Path(os.environ.get("TRACEGEN_FIXTURES",
                               Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "public"))
# Off CI a checkout without ../shared skips fixture tests; under CI their absence is a failure, not a skip.
requires_fixtures = pytest.mark.skipif(not FIXTURES.is_dir() and not os.environ.get("CI"),
                                       reason=f"public fixtures not found at {FIXTURES}")

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


