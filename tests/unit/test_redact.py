"""Redaction masks every secret the process holds, not only variables with a known suffix."""

from __future__ import annotations

import secrets

from pipeline.config import Workspace, parse_settings
from pipeline.redact import held, redact, remember


def test_a_held_token_is_masked_whatever_its_shape():
    token = "tok-" + secrets.token_hex(12)  # no prefix, no key name: no pattern finds it
    assert redact(f"invalid token {token} presented") == f"invalid token {token} presented"
    remember(token)
    assert token in held()
    assert redact(f"invalid token {token} presented") == "invalid token *** presented"


def test_short_values_are_not_held():
    remember("abc", "", None)
    assert not {"abc", ""} & held()


def test_a_refresh_token_variable_of_any_name_is_masked(tmp_path):
    value = "shop-grant-" + secrets.token_hex(10)
    settings = parse_settings(
        {
            "accounts": [
                {"id": "shop1", "platform": "base", "refresh_token_env": "SHOP1_GRANT"},
            ]
        },
        "test",
    )
    Workspace(settings=settings, config_path=None, data_dir=tmp_path, env={"SHOP1_GRANT": value})
    assert redact(f"BASE said: {value} is not valid") == "BASE said: *** is not valid"


def test_ebay_user_tokens_are_masked_by_shape():
    token = "v^1.1#i^1#p^3#r^1#I^3#f^0#t^" + secrets.token_urlsafe(40)
    assert token not in redact(f"refused {token} on GetItem")
