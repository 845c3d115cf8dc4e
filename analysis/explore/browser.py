"""A page in Debian's headless Chromium, driven by Playwright (a dev dependency; it launches /usr/bin/chromium and
downloads no browser): for the explore page's test, its speed benchmark and its screenshots."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# The closed network refuses Chromium's background connections; as root it needs --no-sandbox.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    """Debian's chromium, or a one-line error with the fix."""
    path = os.environ.get("EBGAN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("no chromium on PATH; fix: apt-get install chromium (make test does), or set EBGAN_CHROMIUM")
    return path


@contextmanager
def chromium_page(width: int = 1400, height: int = 1100) -> Iterator[Any]:
    """A Playwright page in a fresh headless Chromium; every page error fails the caller at exit."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("pageerror", lambda error: errors.append(str(error)))
            yield page
        finally:
            browser.close()
    if errors:
        raise AssertionError(f"the page raised: {errors}")
