"""sellers.toml and each seller's sealed workspace: a seller sees only its own variables, its
own data directory and its own history prefix, and a file that would let two sellers share
any of them is refused whole, naming both."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ConfigError, MissingCredentialError
from pipeline.orchestration.sellers import (
    SELLERS_ENV,
    demo_registry,
    find_registry,
    load_registry,
    parse_registry,
)
from pipeline.tokens import store_path

TWO = {
    "sellers": {
        "acme": {"settings": {"mode": "live"}},
        "beta": {"settings": {"mode": "live"}, "env_file": "beta.env"},
    }
}


def test_a_seller_sees_only_its_own_variables(tmp_path: Path) -> None:
    (tmp_path / "beta.env").write_text("SP_API_REFRESH_TOKEN=beta-from-its-own-file\n")
    registry = parse_registry(TWO, tmp_path, "sellers.toml")
    environ = {
        "ACME_SP_API_REFRESH_TOKEN": "acme-token",
        "ACME_LWA_APP_ID": "acme-app",
        "BETA_LWA_APP_ID": "beta-app",
        "SP_API_REFRESH_TOKEN": "unprefixed-token",
        "LWA_CLIENT_SECRET": "unprefixed-secret",
    }
    acme = registry.seller("acme").workspace(environ)
    beta = registry.seller("beta").workspace(environ)
    assert dict(acme.env) == {"SP_API_REFRESH_TOKEN": "acme-token", "LWA_APP_ID": "acme-app"}
    assert dict(beta.env) == {
        "SP_API_REFRESH_TOKEN": "beta-from-its-own-file",
        "LWA_APP_ID": "beta-app",
    }
    assert acme.data_dir == tmp_path / "acme" / "data"
    assert beta.data_dir == tmp_path / "beta" / "data"
    # each seller's refresh-token store lies in its own data directory
    assert store_path(acme.data_dir).is_relative_to(acme.data_dir)
    assert store_path(beta.data_dir).is_relative_to(beta.data_dir)


def test_a_missing_secret_names_the_sellers_own_variable_although_others_are_set(
    tmp_path: Path,
) -> None:
    registry = parse_registry(TWO, tmp_path, "sellers.toml")
    environ = {
        "SP_API_REFRESH_TOKEN": "unprefixed",
        "BETA_SP_API_REFRESH_TOKEN": "beta's",
        "BETA_LWA_APP_ID": "beta's",
        "BETA_LWA_CLIENT_SECRET": "beta's",
    }
    ws = registry.seller("acme").workspace(environ)
    with pytest.raises(MissingCredentialError) as caught:
        ws.require_live_credentials()
    assert "ACME_SP_API_REFRESH_TOKEN" in caught.value.message
    with pytest.raises(MissingCredentialError, match="ACME_LWA_APP_ID is not set"):
        ws.secret("LWA_APP_ID")


@pytest.mark.parametrize(
    ("sellers", "words"),
    [
        (
            {"a": {"data_dir": "shared"}, "b": {"data_dir": "shared"}},
            ["'a' and 'b'", "data directory"],
        ),
        (
            {"a": {"data_dir": "top"}, "b": {"data_dir": "top/inner"}},
            ["'a' and 'b'", "data directory"],
        ),
        (
            {"a": {"env_prefix": "SHOP_"}, "b": {"env_prefix": "SHOP_B_"}},
            ["'SHOP_'", "'SHOP_B_'", "prefix of its own"],
        ),
        (
            {"a": {"env_file": "one.env"}, "b": {"env_file": "one.env"}},
            ["same env_file"],
        ),
        (
            {
                "a": {"settings": {"history": {"url": "s3://bucket/team"}}},
                "b": {"settings": {"history": {"url": "s3://bucket/team/b"}}},
            },
            ["s3://bucket/team/", "would read the other's"],
        ),
    ],
)
def test_sellers_that_would_share_what_keeps_them_apart_are_refused(
    tmp_path: Path, sellers: dict, words: list[str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_registry({"sellers": sellers}, tmp_path, "sellers.toml")
    for word in words:
        assert word in caught.value.message


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({"sellers": {"Bad Id": {}}}, ["'Bad Id'", "lower-case"]),
        ({"sellers": {"a": {"colour": "red"}}}, ["sellers.a.colour"]),
        ({"sellers": {"a": {"schedule": "hourly"}}}, ["cron"]),
        ({"sellers": {"a": {"budget": "soon"}}}, ["sellers.a.budget", "15m"]),
        ({"sellers": {}}, ["names no seller"]),
        ({"seller": {}}, ["unknown table 'seller'"]),
        ({"sellers": {"a": {"config": "a.toml", "settings": {}}}}, ["both config and settings"]),
    ],
)
def test_a_bad_sellers_file_is_one_sentence(
    tmp_path: Path, document: dict, words: list[str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_registry(document, tmp_path, "sellers.toml")
    for word in words:
        assert word in caught.value.message


def test_where_the_code_location_finds_its_sellers(tmp_path: Path) -> None:
    demo = find_registry({}, tmp_path)
    assert demo.ids == ["demo-1", "demo-2", "demo-3"]
    assert len({s.settings.sandbox.seed for s in demo.sellers}) == 3
    assert len({s.data_dir for s in demo.sellers}) == 3
    (tmp_path / "sellers.toml").write_text('[sellers.here]\nschedule = "*/15 * * * *"\n')
    here = find_registry({}, tmp_path)
    assert here.ids == ["here"] and here.sellers[0].schedule == "*/15 * * * *"
    other = tmp_path / "elsewhere.toml"
    other.write_text('[sellers.there]\nbudget = "15m"\n')
    there = find_registry({SELLERS_ENV: str(other)}, tmp_path)
    assert there.ids == ["there"] and there.sellers[0].sync_budget == 900.0
    with pytest.raises(ConfigError, match="does not exist"):
        load_registry(tmp_path / "missing.toml")
    assert len(demo_registry(tmp_path, 20).ids) == 20
