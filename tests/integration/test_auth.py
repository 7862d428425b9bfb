"""`invsync auth base|ebay` end to end: the seller (played with ``requests``) opens the printed
consent URL, allows, and the answer comes back pasted or to the 127.0.0.1 listener; the next
sync or pull uses the stored refresh token, which appears nowhere but the token store."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from pipeline import auth
from pipeline.config import open_workspace
from pipeline.errors import MissingCredentialError
from pipeline.sandbox.credentials import DEMO_ENV
from pipeline.tokens import RefreshTokenStore, store_path, token_key
from tests.conftest import _environment

SMALL_DEMO = "[sandbox]\nn_asins = 300\ntime_scale = 400\n"
LIVE = """mode = "live"
[[accounts]]
id = "shop1"
platform = "base"
refresh_token_env = "BASE_SHOP1_REFRESH_TOKEN"
[[accounts]]
id = "ebay-main"
platform = "ebay"
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class AuthProcess:
    """``invsync auth PLATFORM --account ID`` in a process of its own, read as it prints."""

    def __init__(self, platform: str, account: str, env: dict[str, str], *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "auth", platform, "--account", account, *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_environment(env),
            cwd=Path.cwd(),
        )
        self.lines: list[str] = []

    def consent_url(self) -> str:
        """The printed consent URL, once the command says what to do with it."""
        assert self.proc.stdout is not None
        url = None
        for line in self.proc.stdout:
            self.lines.append(line)
            if "/authorize?" in line:
                url = line.strip()
            if url and (line.startswith("Paste") or line.startswith("Waiting")):
                return url
        raise AssertionError("no consent URL: " + "".join(self.lines) + self.finish()[1])

    def finish(self, pasted: str = "") -> tuple[int, str, str]:
        out, err = self.proc.communicate(pasted, timeout=120)
        return self.proc.returncode, "".join(self.lines) + out, err


def allow(url: str, account: str, *, follow: bool) -> requests.Response:
    """The seller: open the consent page, see the account named, press Allow."""
    page = requests.get(url, params={"shop": account}, timeout=10)
    assert page.status_code == 200 and account in page.text and "Allow" in page.text
    return requests.post(
        url, data={"shop": account, "decision": "allow"}, allow_redirects=follow, timeout=30
    )


def stored(data: Path) -> dict[str, Any]:
    return json.loads(store_path(data).read_text(encoding="utf-8"))


def files_but(data: Path, *kept: Path) -> dict[str, str]:
    return {
        str(path): path.read_bytes().decode("utf-8", errors="replace")
        for path in data.rglob("*")
        if path.is_file() and path not in kept
    }


def assert_private(data: Path) -> None:
    assert stat.S_IMODE(os.stat(store_path(data)).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store_path(data).parent).st_mode) == 0o700


@pytest.mark.slow
def test_auth_against_the_in_process_sandbox_then_a_sync_uses_the_stored_tokens(cli) -> None:
    """Sandbox mode, no endpoints: each `invsync auth` starts its own sandbox, the seller
    pastes the address the browser reached, and a sync afterwards refreshes with the issued
    tokens even though the sandbox no longer knows shop1's demo token."""
    Path("invsync.toml").write_text(SMALL_DEMO)
    data = Path.cwd() / "data"
    outputs = []
    for platform, account in (("base", "shop1"), ("ebay", "ebay-main")):
        process = AuthProcess(platform, account, {})
        answer = allow(process.consent_url(), account, follow=False)
        assert answer.status_code == 302
        code, out, err = process.finish(answer.headers["Location"] + "\n")
        assert code == 0, out + err
        assert f"Connected {auth.NAMES[platform]} {account}" in out
        outputs.append(out + err)
    assert_private(data)
    issued = {key: entry["refresh_token"] for key, entry in stored(data).items()}
    assert set(issued) == {"base:shop1", "ebay:ebay-main"}

    world_path = data / "sandbox" / "world.json"
    world = json.loads(world_path.read_text(encoding="utf-8"))
    base_tokens = world["apis"]["base"]["refresh_tokens"]
    assert base_tokens.pop(DEMO_ENV["BASE_SHOP1_REFRESH_TOKEN"]) == "shop1"  # BASE revokes it
    assert base_tokens[issued["base:shop1"]] == "shop1"
    world_path.write_text(json.dumps(world), encoding="utf-8")

    synced = cli("sync", timeout=300)
    assert synced.exit_code in (0, 3), synced.output  # 3: the gate held some demo rows
    (ledger_file,) = (data / "sandbox" / "ledger").glob("*.json")  # the sync's calls
    ledger = json.loads(ledger_file.read_text(encoding="utf-8"))
    refreshes = [c for c in ledger["calls"] if c["operation"] in ("oauth/token", "oauth2/token")]
    shop1 = [c for c in refreshes if c["account"] == "shop1"]
    assert shop1 and all(c["status"] == 200 for c in shop1), shop1
    assert any(c["api"] == "ebay" and c["status"] == 200 for c in refreshes)
    rotated = stored(data)["base:shop1"]["refresh_token"]
    assert rotated != issued["base:shop1"]  # BASE rotated the issued token, and it was kept

    secrets = [*issued.values(), rotated]
    # the sandbox's own world file is the platforms' side (BASE's database), not invsync's
    haystacks = files_but(data, store_path(data), world_path)
    haystacks["output"] = "".join(outputs) + synced.output
    for where, text in haystacks.items():
        for secret in secrets:
            assert secret not in text, f"a refresh token is in {where}"


def test_auth_catches_the_redirect_on_127_0_0_1_in_live_mode(start_sandbox, cli) -> None:
    """Live mode against a sandbox elsewhere, without any refresh-token variable: the app's
    redirect URI and the RuName's accept URL point at 127.0.0.1 listeners, the seller only
    clicks Allow, and a pull afterwards works on the issued tokens alone."""
    sandbox = start_sandbox(n_asins=200)
    base_cb = f"http://127.0.0.1:{free_port()}/invsync/callback"
    ebay_cb = f"http://localhost:{free_port()}/ebay/accepted"
    requests.post(
        f"{sandbox.url}/_sandbox/consent/apps",
        json={"base_redirect_uri": base_cb, "ebay_accept_url": ebay_cb},
        timeout=10,
    ).raise_for_status()
    Path("invsync.toml").write_text(LIVE)
    env = {
        k: v
        for k, v in sandbox.env().items()
        if k not in ("BASE_SHOP1_REFRESH_TOKEN", "BASE_SHOP2_REFRESH_TOKEN", "EBAY_REFRESH_TOKEN")
    }
    env |= {"BASE_REDIRECT_URI": base_cb, "EBAY_ACCEPT_URL": ebay_cb}
    data = Path.cwd() / "data"

    before = cli("listings", "pull", "--platform", "base", env=env)
    assert before.exit_code == 2, before.output
    assert "BASE_SHOP1_REFRESH_TOKEN, EBAY_REFRESH_TOKEN are not set" in before.stderr

    outputs = []
    for platform, account in (("base", "shop1"), ("ebay", "ebay-main")):
        process = AuthProcess(platform, account, env)
        landed = allow(process.consent_url(), account, follow=True)
        assert landed.status_code == 200 and "invsync has the answer" in landed.text
        code, out, err = process.finish()
        assert code == 0, out + err
        outputs.append(out + err)
    assert_private(data)
    issued = {key: entry["refresh_token"] for key, entry in stored(data).items()}
    ws = open_workspace(data_dir=data, environ=env)
    assert auth.refresh_token_source(ws, "shop1") == "store"
    assert auth.refresh_token_source(ws, "ebay-main") == "store"

    for platform, token in (
        ("base", DEMO_ENV["BASE_SHOP1_REFRESH_TOKEN"]),
        ("ebay", DEMO_ENV["EBAY_REFRESH_TOKEN"]),
    ):  # the seller's older grants are gone: only what invsync auth stored can work
        revoked = requests.post(
            f"{sandbox.url}/_sandbox/consent/revoke",
            json={"platform": platform, "refresh_token": token},
            timeout=10,
        )
        assert revoked.json() == {"revoked": True}
    sandbox.state.ledger.reset()
    for platform in ("base", "ebay"):
        pulled = cli("listings", "pull", "--platform", platform, env=env)
        assert pulled.exit_code == 0, pulled.output
        outputs.append(pulled.output)
    calls = sandbox.ledger_stats()["calls"]
    refreshes = [c for c in calls if c["operation"] in ("oauth/token", "oauth2/token")]
    assert {(c["api"], c["status"]) for c in refreshes} == {("base", 200), ("ebay", 200)}
    assert any(c["operation"] == "items" and c["account"] == "shop1" for c in calls)
    assert any(c["operation"] == "GetMyeBaySelling" for c in calls)

    secrets = [*issued.values(), stored(data)["base:shop1"]["refresh_token"]]
    haystacks = files_but(data, store_path(data))
    haystacks["output"] = "".join(outputs)
    for where, text in haystacks.items():
        for secret in secrets:
            assert secret not in text, f"a refresh token is in {where}"


def _printed_state(output: str) -> str:
    url = next(line for line in output.splitlines() if "/authorize?" in line)
    return parse_qs(urlsplit(url.strip()).query)["state"][0]


def test_a_wrong_state_a_denial_a_bad_code_and_a_silent_browser_are_sentences(cli) -> None:
    Path("invsync.toml").write_text(SMALL_DEMO)
    started = cli("auth", "base", "--account", "shop1")  # nothing pasted on stdin
    assert started.exit_code == 2, started.output
    assert "--redirect-url URL" in started.stderr
    state = _printed_state(started.stdout)
    callback = DEMO_ENV["BASE_REDIRECT_URI"]

    def finish(query: str) -> Any:
        return cli("auth", "base", "--account", "shop1", "--redirect-url", f"{callback}?{query}")

    wrong = finish("code=abc&state=not-this-one")
    assert wrong.exit_code == 2 and "does not carry this consent's state" in wrong.stderr
    denied = finish(f"error=access_denied&state={state}")
    assert denied.exit_code == 2 and "was not given (access_denied)" in denied.stderr
    bad_code = finish(f"code={'0' * 32}&state={state}")
    assert bad_code.exit_code == 4, bad_code.output
    assert "BASE refused the authorization code for shop shop1 (invalid_request)" in (
        bad_code.stderr
    )
    assert not store_path(Path.cwd() / "data").exists()

    other = cli("auth", "ebay", "--account", "shop1")
    assert other.exit_code == 2 and "`invsync auth base --account shop1`" in other.stderr


def test_a_browser_that_never_comes_back_is_a_sentence(start_sandbox, cli) -> None:
    sandbox = start_sandbox(n_asins=60)
    Path("invsync.toml").write_text(LIVE)
    port = free_port()
    env = {**sandbox.env(), "BASE_REDIRECT_URI": f"http://127.0.0.1:{port}/cb"}
    silent = cli("auth", "base", "--account", "shop1", "--timeout", "0.5", env=env)
    assert silent.exit_code == 2, silent.output
    assert f"No answer reached http://127.0.0.1:{port}/cb within 0.5 s" in silent.stderr


def test_live_mode_takes_a_stored_token_for_the_missing_variable(tmp_path: Path) -> None:
    Path("invsync.toml").write_text(LIVE)
    env = {k: v for k, v in DEMO_ENV.items() if not k.endswith("REFRESH_TOKEN")}
    env["SP_API_REFRESH_TOKEN"] = DEMO_ENV["SP_API_REFRESH_TOKEN"]
    ws = open_workspace(data_dir=tmp_path / "data", environ=env)
    with pytest.raises(MissingCredentialError, match="BASE_SHOP1_REFRESH_TOKEN, EBAY_REFRESH"):
        ws.require_live_credentials()
    assert auth.refresh_token_source(ws, "shop1") is None
    store = RefreshTokenStore(store_path(ws.data_dir))
    store.save(token_key("base", "shop1"), "consented-base-token", "")
    store.save(token_key("ebay", "ebay-main"), "consented-ebay-token", "")
    ws.require_live_credentials()  # the store covers both accounts
    assert auth.refresh_token_source(ws, "shop1") == "store"

    # a fresh consent pasted into .env later wins over the stored one; the same old one not
    newer = open_workspace(
        data_dir=ws.data_dir, environ={**env, "BASE_SHOP1_REFRESH_TOKEN": "pasted-later"}
    )
    assert auth.refresh_token_source(newer, "shop1") == "env"
    store.save(token_key("base", "shop1"), "consented-again", "pasted-later")
    assert auth.refresh_token_source(newer, "shop1") == "store"
