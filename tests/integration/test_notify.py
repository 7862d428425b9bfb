"""Alerts through apprise against a real loopback webhook receiver: one JSON POST per held or
failed run, none for an ok run; a URL that cannot be reached is one warning, never a change
of exit code; a secret given to a URL as ${VAR} never reaches a log."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import pytest

from pipeline import notify
from pipeline.config import Workspace, parse_settings
from pipeline.errors import ExternalApiError
from pipeline.sync import SyncSummary
from tests.integration.webhook import Receiver

SECRET = "hook-key-7f3a9c41d2"  # the variable's name is not one redact knows by itself
RUN = "20260101T000000Z-abc123"


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def workspace(tmp_path: Path, urls: list[str], on: list[str] | None = None) -> Workspace:
    notify_section: dict = {"urls": urls}
    if on is not None:
        notify_section["on"] = on
    return Workspace(
        settings=parse_settings({"notify": notify_section}),
        config_path=None,
        data_dir=tmp_path / "data",
        env={"NOTIFY_KEY": SECRET},
    )


def summary(outcome: str, message: str | None = None) -> SyncSummary:
    return SyncSummary(
        run_id=RUN,
        mode="sandbox",
        outcome=outcome,
        message=message,
        diffs={"base": {"price_up": 3, "out_of_stock": 1}, "ebay": {"price_down": 2}},
        held_rows={"base": 2, "ebay": 0},
        pushes={"base": {"ok": 2, "failed": 1 if outcome == "failed" else 0}, "ebay": {"ok": 2}},
    )


def test_a_held_run_sends_one_message_with_the_run_and_the_workbench(
    tmp_path: Path, receiver: Receiver
) -> None:
    ws = workspace(tmp_path, [receiver.url + "/hooks/${NOTIFY_KEY}"])
    held = summary("held", f"Run {RUN} is held for review: 2 BASE rows; release with ….")
    assert notify.after_sync(ws, held) == 1
    (post,) = receiver.posts
    assert post["path"] == f"/hooks/{SECRET}"  # the placeholder was filled from the env
    payload = json.loads(post["body"])
    assert RUN in payload["title"] and payload["type"] == "warning"
    body = payload["message"]
    assert f"invsync review --serve --run {RUN}" in body
    assert "Changes: BASE 4 (out_of_stock 1, price_up 3); eBay 2 (price_down 2)" in body
    assert "Held rows: BASE 2, eBay 0" in body and "Failures: none" in body


def test_an_ok_run_sends_nothing_and_a_failed_one_sends_one(
    tmp_path: Path, receiver: Receiver
) -> None:
    ws = workspace(tmp_path, [receiver.url + "/hook"])
    assert notify.after_sync(ws, summary("ok")) == 0
    assert notify.after_sync(ws, summary("interrupted")) == 0
    assert receiver.posts == []
    assert notify.after_sync(ws, summary("failed", "BASE failed 1 of 4 items.")) == 1
    (post,) = receiver.posts
    payload = json.loads(post["body"])
    assert payload["type"] == "failure" and f"run {RUN} failed" in payload["title"]
    assert "Failures: BASE 1 failed, 0 quarantined" in payload["message"]
    assert f"invsync review --serve --run {RUN}" in payload["message"]


def test_on_chooses_which_runs_alert(tmp_path: Path, receiver: Receiver) -> None:
    ws = workspace(tmp_path, [receiver.url + "/hook"], on=["failed"])
    assert notify.after_sync(ws, summary("held", "held")) == 0
    assert notify.after_failed_sync(ws, ExternalApiError("SP-API refused the token.")) == 1
    (post,) = receiver.posts
    assert "A sync failed: SP-API refused the token." in json.loads(post["body"])["message"]


def test_an_unreachable_url_is_one_warning_without_the_secret(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"json://127.0.0.1:{closed_port()}/hooks/${{NOTIFY_KEY}}"
    ws = workspace(tmp_path, [dead, receiver.url + "/hook"])
    with caplog.at_level(logging.DEBUG):
        sent = notify.after_sync(ws, summary("held", "held"))
    assert sent == 1 and len(receiver.posts) == 1  # the other URL still got it
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].name == "invsync.notify"
    text = warnings[0].getMessage()
    assert "notify.urls[0] (json://127.0.0.1:" in text and "exit code is unchanged" in text
    assert SECRET not in caplog.text


def test_a_missing_variable_is_a_warning_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ws = workspace(tmp_path, ["json://127.0.0.1:9/hooks/${NOT_SET_ANYWHERE}"])
    with caplog.at_level(logging.WARNING, logger="invsync.notify"):
        assert notify.after_sync(ws, summary("held", "held")) == 0
    assert "${NOT_SET_ANYWHERE} is not set in the environment or .env" in caplog.text


@pytest.mark.slow
def test_a_held_demo_sync_alerts_once_and_keeps_exit_3(cli, receiver: Receiver) -> None:
    dead = f"json://127.0.0.1:{closed_port()}/hooks/${{NOTIFY_KEY}}"
    Path("invsync.toml").write_text(
        "[sandbox]\nn_asins = 300\ntime_scale = 400\n"
        "[guardrails]\nmax_price_change_pct = 5\n"
        f'[notify]\nurls = ["{receiver.url}/hooks/${{NOTIFY_KEY}}", "{dead}"]\n'
    )
    Path(".env").write_text(f"NOTIFY_KEY={SECRET}\n")  # secrets only in the env or .env
    synced = cli("--debug", "sync", timeout=300)
    assert synced.exit_code == 3, synced.output  # the dead URL changed nothing
    (post,) = receiver.posts
    assert post["path"] == f"/hooks/{SECRET}"
    run_id = next(line.split()[1] for line in synced.stdout.splitlines() if line.startswith("Run "))
    message = json.loads(post["body"])["message"]
    assert f"Run {run_id}" in message and f"invsync review --serve --run {run_id}" in message
    assert "notify.urls[1]" in synced.stderr and "not sent" in synced.stderr
    assert "Error" not in synced.output
    logs = (Path("data") / "logs" / "invsync.jsonl").read_text()
    assert "notify.urls[1]" in logs
    assert SECRET not in synced.output and SECRET not in logs


def test_the_file_holds_placeholders_never_a_password() -> None:
    from pipeline.errors import ConfigError

    assert parse_settings({}).notify.urls == []
    assert parse_settings({}).notify.on == ["held", "failed"]
    ok = parse_settings({"notify": {"urls": ["mailtos://alerts:${SMTP_PASSWORD}@mail.example"]}})
    assert ok.notify.urls == ["mailtos://alerts:${SMTP_PASSWORD}@mail.example"]
    with pytest.raises(ConfigError, match=r"notify.urls\[0\] has a password written into"):
        parse_settings({"notify": {"urls": ["mailtos://alerts:hunter2hunter2@mail.example"]}})
    with pytest.raises(ConfigError, match=r"notify.on\[0\]"):
        parse_settings({"notify": {"on": ["ok"]}})
