"""python-amazon-sp-api: the release range invsync is pinned to, and the library's internals
invsync relies on (its token cache, the LWA URL attributes, the httpx client it times), so
an upgrade that moves one fails here with a sentence naming it, not deep in a fetch."""

from __future__ import annotations

import re
import tomllib
import types
from pathlib import Path

import pytest
from sp_api.api import Products

from pipeline.clients.spapi import LIBRARY_REQUIREMENT, check_library, library_problems
from pipeline.errors import ConfigError
from pipeline.sandbox.credentials import DEMO_ENV

ROOT = Path(__file__).resolve().parents[2]


def _products() -> Products:
    marketplace = types.SimpleNamespace(
        endpoint="http://127.0.0.1:9", marketplace_id="A1VC38T7YXB528", region="us-west-2"
    )
    credentials = {
        "refresh_token": DEMO_ENV["SP_API_REFRESH_TOKEN"],
        "lwa_app_id": DEMO_ENV["LWA_APP_ID"],
        "lwa_client_secret": DEMO_ENV["LWA_CLIENT_SECRET"],
    }
    return Products(marketplace=marketplace, credentials=credentials)  # no call at init


def test_pyproject_pins_the_release_range_whose_internals_we_use() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = [d for d in project["dependencies"] if re.match(r"python-amazon-sp-api\b", d)]

    assert pins == [LIBRARY_REQUIREMENT] == ["python-amazon-sp-api>=2.1.20,<3"]


def test_the_installed_library_has_every_internal_invsync_relies_on() -> None:
    problems = library_problems(_products())

    assert problems == [], (
        "python-amazon-sp-api moved internals invsync uses (pipeline/clients/spapi.py): "
        + "; ".join(problems)
    )


def test_a_moved_internal_is_one_clear_sentence_naming_it_and_the_pin() -> None:
    products = _products()
    products._transport = types.SimpleNamespace()  # as a release without _client would be

    with pytest.raises(ConfigError) as raised:
        check_library(products)

    message = str(raised.value)
    assert "Products._transport._client" in message
    assert LIBRARY_REQUIREMENT in message
    assert ConfigError.exit_code == 2
