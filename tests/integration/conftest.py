"""Fixtures of the browser tests: headless Chromium through chromium-driver, and a folder
for screenshots that the run's summary prints."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

INSTALL = "apt-get install -y chromium chromium-driver"
WAIT_SECONDS = 30


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, f"The browser tests need Chromium and its driver: {INSTALL}"
    options = webdriver.ChromeOptions()
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):  # fmt: skip
        options.add_argument(argument)
    options.binary_location = chromium
    session = webdriver.Chrome(options=options, service=Service(driver))
    session.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield session
    finally:
        session.quit()


@pytest.fixture
def shots(tmp_path: Path, record_property: Any) -> Path:
    """A folder for the test's screenshots; the run's summary prints it (tests/conftest.py)."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    record_property("screenshots", str(folder))
    return folder


# the loopback S3 store (moto's server) for the history-store tests: tests/integration/s3kit.py
from tests.integration.s3kit import s3_store  # noqa: E402, F401

# a loopback webhook receiver for the alert tests: tests/integration/webhook.py
from tests.integration.webhook import receiver  # noqa: E402, F401
