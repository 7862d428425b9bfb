"""`invsync config check` and configuration errors: one sentence naming key and file,
exit 2; secrets never printed."""

from __future__ import annotations

from pathlib import Path

import pytest

SECRETS = {
    "SP_API_REFRESH_TOKEN": "Atzr|IwEBIsecret-refresh-123456",
    "LWA_APP_ID": "amzn1.application-oa2-client.appid987654",
    "LWA_CLIENT_SECRET": "lwa-client-secret-abcdef",
    "BASE_CLIENT_ID": "base-client-id-777777",
    "BASE_CLIENT_SECRET": "base-client-secret-888888",
    "BASE_SHOP1_REFRESH_TOKEN": "base-refresh-shop1-999999",
    "EBAY_CLIENT_ID": "ebay-client-id-111111",
    "EBAY_CLIENT_SECRET": "ebay-client-secret-222222",
    "EBAY_REFRESH_TOKEN": "v^1.1#i^1#ebay-refresh-333333",
}
# What live mode needs besides the secrets: BASE's registered redirect URI (not a secret).
LIVE_ENV = {**SECRETS, "BASE_REDIRECT_URI": "https://example.invalid/callback"}

LIVE = """
mode = "live"

[amazon]
marketplace = "JP"

[[accounts]]
id = "shop1"
platform = "base"
refresh_token_env = "BASE_SHOP1_REFRESH_TOKEN"

[[accounts]]
id = "ebay-main"
platform = "ebay"
"""


def test_config_check_never_prints_a_secret(cli) -> None:
    Path("invsync.toml").write_text(LIVE)
    for as_json in ([], ["--json"]):
        result = cli("config", "check", *as_json, env=LIVE_ENV)
        assert result.exit_code == 0, result.output
        for value in SECRETS.values():
            assert value not in result.output
        assert "BASE_SHOP1_REFRESH_TOKEN" in result.output and "set" in result.output


def test_secrets_in_a_dotenv_file_are_read_and_not_printed(cli) -> None:
    Path("invsync.toml").write_text(LIVE)
    Path(".env").write_text("".join(f"{k}={v}\n" for k, v in LIVE_ENV.items()))
    result = cli("config", "check")
    assert result.exit_code == 0, result.output
    assert "not set" not in result.output
    assert all(value not in result.output for value in SECRETS.values())


def test_live_mode_without_credentials_names_every_missing_variable(cli) -> None:
    Path("invsync.toml").write_text(LIVE)
    partial = {
        k: v for k, v in LIVE_ENV.items() if k not in ("LWA_CLIENT_SECRET", "EBAY_REFRESH_TOKEN")
    }
    from pipeline.config import open_workspace
    from pipeline.errors import MissingCredentialError

    ws = open_workspace(environ=partial)
    with pytest.raises(MissingCredentialError) as caught:
        ws.require_live_credentials()
    assert "LWA_CLIENT_SECRET, EBAY_REFRESH_TOKEN are not set" in str(caught.value)
    assert caught.value.exit_code == 2
    with pytest.raises(MissingCredentialError):
        ws.secret("LWA_CLIENT_SECRET")  # live mode never falls back to the sandbox's


CASES = [
    ("unknown key", '[amazon]\nmarketplace = "JP"\nmarkup = 3\n', "unknown key 'amazon.markup'"),
    ("unknown account key", '[[accounts]]\nid = "a"\nplaform = "base"\n', "accounts[0].plaform"),
    ("missing key", '[[accounts]]\nid = "shop1"\n', "missing key 'accounts[0].platform'"),
    ("malformed value", '[amazon]\noperation = "fastest"\n', "key 'amazon.operation' is malformed"),
    ("bad duration", '[amazon]\nmax_fallback_age = "soon"\n', "key 'amazon.max_fallback_age' is malformed"),
    ("base without token", '[[accounts]]\nid = "s"\nplatform = "base"\n', "needs refresh_token_env"),
    ("duplicate account", '[[accounts]]\nid = "e"\nplatform = "ebay"\n[[accounts]]\nid = "e"\nplatform = "ebay"\n', "declared twice"),
    ("not TOML", "[amazon\n", "is not valid TOML"),
    ("sku_pattern not a regex", '[[accounts]]\nid = "e"\nplatform = "ebay"\nsku_pattern = "(?P<asin>B[0-9]{9}"\n', "'accounts[0].sku_pattern' is malformed: is not a valid regular expression"),
    ("sku_pattern without asin group", '[[accounts]]\nid = "e"\nplatform = "ebay"\nsku_pattern = "(B[0-9]{9})-(X)"\n', "none named 'asin'"),
    ("end_listing on a BASE shop", '[[accounts]]\nid = "s"\nplatform = "base"\nrefresh_token_env = "S_TOKEN"\n[pricing.accounts.s]\nout_of_stock_action = "end_listing"\n', "pricing.accounts.s.out_of_stock_action must be 'stock_zero' or 'hide'"),
    ("two shops one token", '[[accounts]]\nid = "a"\nplatform = "base"\nrefresh_token_env = "T"\n[[accounts]]\nid = "b"\nplatform = "base"\nrefresh_token_env = "T"\n', "each shop needs its own variable"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_configuration_is_one_sentence_naming_key_and_file(cli, kind, text, expected) -> None:
    Path("custom.toml").write_text(text)
    result = cli("--config", "custom.toml", "config", "check")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "custom.toml" in lines[0] and expected in lines[0]


def test_config_file_from_environment_and_missing_file(cli) -> None:
    Path("elsewhere.toml").write_text('[amazon]\noperation = "competitive_pricing"\n')
    found = cli("config", "check", "--json", env={"INVSYNC_CONFIG": "elsewhere.toml"})
    assert found.exit_code == 0 and "competitive_pricing" in found.stdout
    missing = cli("config", "check", env={"INVSYNC_CONFIG": "nope.toml"})
    assert missing.exit_code == 2 and "INVSYNC_CONFIG" in missing.stderr


def test_no_configuration_means_the_sandbox_demo(cli) -> None:
    result = cli("config", "check", "--json")
    assert result.exit_code == 0
    assert '"mode": "sandbox"' in result.stdout and "shop1" in result.stdout


def test_example_configuration_is_valid(cli) -> None:
    example = Path(__file__).resolve().parents[2] / "invsync.example.toml"
    result = cli("--config", str(example), "config", "check")
    assert result.exit_code == 0, result.output


def test_usage_errors_exit_2_and_debug_shows_a_traceback(cli) -> None:
    assert cli("no-such-command").exit_code == 2
    bad = cli("--debug", "--config", "absent.toml", "config", "check")
    assert bad.exit_code == 2 and "Traceback" in bad.stderr


def test_live_sync_without_credentials_fails_naming_them_and_calls_nothing(cli) -> None:
    Path("invsync.toml").write_text(LIVE)
    result = cli("sync", env={"LWA_APP_ID": "amzn1.application-oa2-client.x"})
    assert result.exit_code == 2, result.output
    assert "asks for live mode but" in result.stderr
    for name in (
        "SP_API_REFRESH_TOKEN",
        "LWA_CLIENT_SECRET",
        "BASE_SHOP1_REFRESH_TOKEN",
        "EBAY_REFRESH_TOKEN",
    ):
        assert name in result.stderr
    assert "LWA_APP_ID," not in result.stderr  # the one that is set is not named
    assert "sandbox" not in result.stdout.lower()  # never falls back to the sandbox
    assert not (Path("data") / "warehouse.duckdb").exists()


def test_live_config_check_without_credentials_exits_2_with_the_sentence_sync_gives(cli) -> None:
    """A live configuration with every credential missing is not 'valid': config check
    says what sync would say, in the same words, with the same exit code."""
    Path("invsync.toml").write_text(LIVE)
    checked = cli("config", "check")
    synced = cli("sync")
    assert checked.exit_code == synced.exit_code == 2, checked.output
    assert "Configuration is valid" not in checked.output
    said = [line for line in checked.stderr.splitlines() if line.startswith("Error: ")]
    assert said == [line for line in synced.stderr.splitlines() if line.startswith("Error: ")]
    assert "asks for live mode but" in said[0] and "SP_API_REFRESH_TOKEN" in said[0]
    as_json = cli("config", "check", "--json")
    assert as_json.exit_code == 2 and '"problems"' in as_json.stdout


def test_config_check_warns_when_dotenv_is_readable_by_others(cli) -> None:
    Path("invsync.toml").write_text(LIVE)
    dotenv = Path(".env")
    dotenv.write_text("".join(f"{k}={v}\n" for k, v in LIVE_ENV.items()))
    dotenv.chmod(0o644)
    loose = cli("config", "check")
    assert loose.exit_code == 0, loose.output
    assert "other users of this machine can read it (mode 644); run `chmod 600 .env`" in (
        loose.stderr
    )
    dotenv.chmod(0o600)
    tight = cli("config", "check")
    assert tight.exit_code == 0 and "chmod" not in tight.output
