"""Alerts: one message per held or failed sync, sent through apprise to the ``[notify]`` URLs.

Reads the ``[notify]`` settings, the environment (for the ``${VAR}`` placeholders that hold
every secret part of a URL) and, for a sync that stopped on an error, the newest run id in
the warehouse; writes nothing but the messages. Called by the CLI after each sync (``sync``
and every run of ``daemon``), never by the stages.

A message names the run, when it started (in the ``[display] timezone``, named), what it
changed, what was held per platform, what failed, and the command that opens the review
workbench. Sending is best effort: an alert that cannot be
sent is logged as one warning (secrets masked, the URL shown as written in the file, with
its placeholders) and never changes the run's exit code.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.config import NOTIFY_PLACEHOLDER, NotifyKind, Workspace
from pipeline.display import local, run_started
from pipeline.errors import InvsyncError
from pipeline.platforms import DISPLAY_NAMES, PLATFORMS
from pipeline.redact import redact, secret_values

if TYPE_CHECKING:  # the CLI imports this module on first sync; the stage is loaded by then
    from pipeline.sync import SyncSummary

log = logging.getLogger("invsync.notify")

Kind = NotifyKind
WORKBENCH = "invsync review --serve --run {run_id}"


@dataclass(frozen=True)
class Alert:
    """One message: what kind of run it is about, the run, a title and a plain-text body."""

    kind: Kind
    run_id: str | None
    title: str
    body: str


def workbench_command(run_id: str) -> str:
    return WORKBENCH.format(run_id=run_id)


def started_line(run_id: str, timezone: str) -> list[str]:
    """``Started: 2026-11-30 20:26 JST``: the run's start in the display zone, named (none
    for an id that carries no time)."""
    started = run_started(run_id)
    return [] if started is None else [f"Started: {local(started, timezone)}"]


def alert_for(summary: SyncSummary, timezone: str) -> Alert | None:
    """The message for a finished sync: one for a held or failed run, None otherwise; its
    time in ``timezone`` (``[display] timezone``), named."""
    if summary.outcome not in ("held", "failed"):
        return None
    kind: Kind = "held" if summary.outcome == "held" else "failed"
    run_id = summary.run_id
    lines = [f"Run {run_id} ({summary.mode}) {_verb(kind)}.", *started_line(run_id, timezone)]
    changes = []
    for platform in PLATFORMS:
        kinds = summary.diffs.get(platform)
        if kinds is None:
            continue
        total = sum(kinds.values())
        detail = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()) if n)
        changes.append(f"{DISPLAY_NAMES[platform]} {total}" + (f" ({detail})" if detail else ""))
    lines.append("Changes: " + ("; ".join(changes) if changes else "none"))
    held = [
        f"{DISPLAY_NAMES[p]} {summary.held_rows.get(p, 0)}"
        for p in PLATFORMS
        if p in summary.diffs or p in summary.held_rows
    ]
    lines.append("Held rows: " + (", ".join(held) if held else "none"))
    for platform, why in summary.held_platforms.items():
        lines.append(f"Load held: {DISPLAY_NAMES.get(platform, platform)} ({why})")
    if summary.protected:
        lines.append(f"Listings protected while held: {summary.protected:,}")
    failures = []
    for platform in PLATFORMS:
        states = summary.pushes.get(platform, {})
        failed, quarantined = states.get("failed", 0), states.get("quarantined", 0)
        if failed or quarantined:
            failures.append(f"{DISPLAY_NAMES[platform]} {failed} failed, {quarantined} quarantined")
    lines.append("Failures: " + ("; ".join(failures) if failures else "none"))
    if summary.message:
        lines.append(summary.message)
    lines.append(f"Open the workbench: {workbench_command(run_id)}")
    return Alert(kind, run_id, f"invsync: run {run_id} {_verb(kind)}", "\n".join(lines))


def alert_for_error(exc: BaseException, run_id: str | None, timezone: str) -> Alert:
    """The message for a sync that stopped on an error before its summary; its time in
    ``timezone``, named."""
    sentence = (
        exc.message
        if isinstance(exc, InvsyncError)
        else f"invsync hit a bug ({type(exc).__name__}); run it again with --debug and report it."
    )
    named = f"Run {run_id}" if run_id else "A sync"
    lines = [f"{named} failed: {sentence}"]
    if run_id:
        lines += started_line(run_id, timezone)
        lines.append(f"Open the workbench: {workbench_command(run_id)}")
    title = f"invsync: run {run_id} failed" if run_id else "invsync: a sync failed"
    return Alert("failed", run_id, title, "\n".join(lines))


def _verb(kind: Kind) -> str:
    return "is held for review" if kind == "held" else "failed"


# --- sending ----------------------------------------------------------------------------


def resolve_url(template: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """``template`` with every ``${VAR}`` filled from ``env``, and the values filled in (the
    secrets to mask). A variable that is not set raises ``KeyError`` with its name."""
    values: list[str] = []

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        value = env.get(name, "")
        if not value:
            raise KeyError(name)
        values.append(value)
        return value

    return NOTIFY_PLACEHOLDER.sub(fill, template), values


def after_sync(ws: Workspace, summary: SyncSummary) -> int:
    """Send the alert for a finished sync when ``[notify] on`` asks for its kind; returns
    how many URLs accepted it."""
    alert = alert_for(summary, ws.settings.display.timezone)
    if alert is None:
        return 0
    return send(ws, alert)


def after_failed_sync(ws: Workspace, exc: BaseException) -> int:
    """Send the alert for a sync that stopped on an error (best effort, never raises)."""
    if "failed" not in ws.settings.notify.on or not ws.settings.notify.urls:
        return 0
    return send(ws, alert_for_error(exc, _newest_sync_run(ws), ws.settings.display.timezone))


def send(ws: Workspace, alert: Alert) -> int:
    """Send ``alert`` to every ``[notify]`` URL, one by one so a failure names its URL; returns
    how many accepted it. Never raises: a failure is one warning with secrets masked."""
    settings = ws.settings.notify
    if alert.kind not in settings.on or not settings.urls:
        return 0
    sent = 0
    for index, template in enumerate(settings.urls):
        where = f"notify.urls[{index}] ({_service(template)})"
        masked = secret_values(ws.env)
        try:
            url, values = resolve_url(template, ws.env)
            masked = secret_values(ws.env, extra=values)
            problem = _send_one(url, alert)
        except KeyError as missing:
            problem = f"${{{missing.args[0]}}} is not set in the environment or .env"
        except Exception as exc:  # a bug in a plugin must not fail the run
            problem = f"apprise raised {type(exc).__name__}"
        if problem is None:
            sent += 1
            log.info("Sent the %s alert for run %s to %s.", alert.kind, alert.run_id, where)
        else:
            log.warning(
                "%s",
                redact(
                    f"The {alert.kind} alert for run {alert.run_id} was not sent to {where}: "
                    f"{problem}; the run's exit code is unchanged.",
                    masked,
                ),
            )
    return sent


def _service(template: str) -> str:
    """``scheme://host`` of a URL as written in the file: enough to find it, and no part that
    could hold a token (user, password, path, query)."""
    scheme, _, rest = template.partition("://")
    host = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2]
    return f"{scheme}://{host}"


def _send_one(url: str, alert: Alert) -> str | None:
    """None when the service accepted the message, else why not (from apprise's warnings)."""
    import apprise

    with _apprise_warnings() as captured:
        notifier = apprise.Apprise()
        if not notifier.add(url):
            return "apprise does not recognise this URL (check its scheme and parts)"
        notify_type = (
            apprise.NotifyType.WARNING if alert.kind == "held" else apprise.NotifyType.FAILURE
        )
        accepted = bool(
            notifier.notify(body=alert.body, title=alert.title, notify_type=notify_type)
        )
    if accepted:
        return None
    reason = captured.getvalue().strip().splitlines()
    return reason[-1] if reason else "the service did not accept it"


@contextlib.contextmanager
def _apprise_warnings() -> Iterator[io.StringIO]:
    """apprise's own warnings and errors, captured instead of printed: its DEBUG lines carry
    full request URLs, so nothing of it propagates to other handlers meanwhile."""
    logger = logging.getLogger("apprise")
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(message)s"))
    saved = logger.propagate, logger.level
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield buffer
    finally:
        logger.removeHandler(handler)
        logger.propagate, logger.level = saved


def _newest_sync_run(ws: Workspace) -> str | None:
    """The newest sync's run id, to name the run a failed sync recorded; None if unreadable."""
    from pipeline import runs, warehouse

    try:
        with warehouse.opened(ws.data_dir, read_only=True) as con:
            latest = runs.latest_sync(con)
    except Exception:  # no warehouse yet, or busy: the alert goes without a run id
        return None
    return latest[0] if latest else None
