"""Everything invsync shows on a terminal: progress, summaries, one line per fact.

Stage: the CLI edge. The stages return results; this module turns them into text, and
:mod:`pipeline.cli` prints it. Nothing here reads or writes data.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pipeline import display, pool
from pipeline.money import money as money  # the one money formatter, re-exported for callers
from pipeline.platforms import DISPLAY_NAMES, PLATFORMS

if TYPE_CHECKING:  # the CLI imports this module at start-up; the stages load on first use
    import polars as pl

    from pipeline.checks import Probe
    from pipeline.config import Workspace
    from pipeline.listings_pull import PullResult
    from pipeline.load import LoadResult
    from pipeline.review import ReviewResult
    from pipeline.sync import SyncSummary
    from pipeline.transform import TransformResult

PREVIEW_ROWS = 5  # rows shown per account in a dry-run load
HELD_SHOWN = 20  # held rows listed per platform by `invsync review`


def plain(text: object) -> str:
    """``text`` (a SKU, a title: anything a platform or a person typed) made safe to print
    through rich: its ``[...]`` markup is escaped, so ``SKU-[bold]1`` prints as written and
    a title cannot restyle or hide the terminal's output."""
    from rich.markup import escape

    return escape("" if text is None else str(text))


# --- fetch progress (pipeline.fetch.FetchProgress) -----------------------------------------


class LineProgress:
    """Plain log lines (not a terminal): one at start, then at most one every
    ``every_seconds``, and one at the end."""

    def __init__(self, emit: Callable[[str], None], every_seconds: float = 10.0) -> None:
        self.emit = emit
        self.every_seconds = every_seconds
        self._last = 0.0
        self._total = 0
        self._state = (0, 0, 0, 0.0)

    def start(self, *, asins: int, calls: int, eta_seconds: float, operation: str) -> None:
        self._total = asins
        self._last = time.monotonic()
        # a pooled fetch names its lanes ("item_offers + item_offers_single"): its floor is
        # the pool's (pipeline.pool.floor_seconds)
        floor = "pooled quota floor" if "+" in operation else "quota floor"
        self.emit(f"fetch: {asins} ASINs in {calls} {operation} calls; {floor} {eta_seconds:.0f} s")

    def update(self, *, asins_done: int, calls: int, throttled: int, eta_seconds: float) -> None:
        self._state = (asins_done, calls, throttled, eta_seconds)
        now = time.monotonic()
        if now - self._last >= self.every_seconds:
            self._last = now
            self._line()

    def _line(self) -> None:
        done, calls, throttled, eta = self._state
        self.emit(
            f"fetch: {done}/{self._total} ASINs, {calls} calls, {throttled} 429s, ETA {eta:.0f} s"
        )

    def finish(self) -> None:
        self._line()


class RichProgress:
    """A rich progress bar: ASINs done, calls, 429s and an ETA from the quota floor."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._progress = Progress(
            TextColumn("[bold]fetch[/bold] {task.fields[operation]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("ASINs · {task.fields[calls]} calls · {task.fields[throttled]} 429s"),
            TextColumn("· ETA {task.fields[eta]}"),
            console=console,
            transient=False,
        )
        self._task: Any = None

    def start(self, *, asins: int, calls: int, eta_seconds: float, operation: str) -> None:
        self._progress.start()
        self._task = self._progress.add_task(
            "fetch", total=asins, operation=operation, calls=0, throttled=0,
            eta=_clock_text(eta_seconds),
        )  # fmt: skip

    def update(self, *, asins_done: int, calls: int, throttled: int, eta_seconds: float) -> None:
        self._progress.update(
            self._task, completed=asins_done, calls=calls, throttled=throttled,
            eta=_clock_text(eta_seconds),
        )  # fmt: skip

    def finish(self) -> None:
        self._progress.stop()


def _clock_text(seconds: float) -> str:
    whole = max(0, math.ceil(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


# --- pure frame functions ------------------------------------------------------------------


def run_cells(row: dict[str, Any], columns: list[tuple[str, str]], timezone: str) -> list[str]:
    """One row of ``invsync runs`` as text: times in ``timezone`` with the zone named, numbers
    with two decimals, nothing as ``–``."""
    cells = []
    for _, name in columns:
        value = row[name]
        if value is None:
            cells.append("–")
        elif name.endswith("_at"):
            cells.append(display.local(value, timezone))
        elif isinstance(value, float):
            cells.append(f"{value:.2f}")
        else:
            cells.append(str(value))
    return cells


STOCK_TEXT = {True: "in stock", False: "out of stock", None: "no answer"}
HISTORY_ROWS = 10  # newest observations listed by `invsync history`


def history_lines(frame: pl.DataFrame, asin: str, timezone: str) -> list[str]:
    """``invsync history``: the zone, the sparkline (out of stock a gap, never ¥0), the
    in-stock price range, then the newest observations, each time in ``timezone``."""
    from pipeline.history import SPARK_OUT_OF_STOCK, sparkline

    times = frame["fetched_at"].to_list()
    prices = frame["price_jpy"].to_list()
    in_stock = frame["in_stock"].to_list()
    stocked = [p for p, s in zip(prices, in_stock, strict=True) if s and p is not None]
    out = [
        f"{asin}: {frame.height} observations, {frame['run_id'].n_unique()} runs; "
        f"{display.zone_note(timezone, times[-1])}",
        f"  price  {sparkline(prices, in_stock)}  "
        f"{display.local(times[0], timezone)} → {display.local(times[-1], timezone)}",
    ]
    gaps = []
    if False in in_stock:
        gaps.append(f"{SPARK_OUT_OF_STOCK} out of stock (no price)")
    if any(p is None and s is not False for p, s in zip(prices, in_stock, strict=True)):
        gaps.append("blank: no answer from Amazon")
    if gaps:
        out.append(f"         {', '.join(gaps)}")
    if stocked:
        out.append(
            f"  range  {money(min(stocked), 'JPY')} – {money(max(stocked), 'JPY')} (in stock)"
        )
    for row in frame.tail(HISTORY_ROWS).iter_rows(named=True):
        price = money(row["price_jpy"], "JPY")
        stock = STOCK_TEXT[row["in_stock"]]
        out.append(
            f"  {display.local(row['fetched_at'], timezone)}  {price:>9}  {stock:<13}"
            f"{row['status']}"
        )
    return out


# --- sync ------------------------------------------------------------------------------------


def resume_line(summary: SyncSummary) -> str:
    """What a resumed run found before it loaded: listings changed by hand since the stop
    (held, never pushed over) and the pushes its stopped process left unconfirmed."""
    drifted = summary.drifted_since_stop
    text = (
        f"  resumed           listings pulled again: {drifted:,} changed by hand since the "
        f"stop{' (held as drift, not pushed over)' if drifted else ''}"
    )
    settled = summary.settled
    unconfirmed = sum(settled.values())
    if unconfirmed:
        text += (
            f"; {unconfirmed:,} unconfirmed push(es) read back: "
            f"{settled.get('already_applied', 0):,} already applied, "
            f"{settled.get('not_applied', 0):,} not applied"
        )
    return text


def sync_summary_lines(summary: SyncSummary, timezone: str) -> list[str]:
    """The closing summary, one fact per line; its start time in ``timezone``, named."""
    out = [
        f"Run {summary.run_id} ({summary.mode}{', resumed' if summary.resumed else ''}): {summary.outcome}"
    ]
    started = display.run_started(summary.run_id)
    if started is not None:
        out.append(
            f"  started           {display.local(started, timezone, seconds=True)} "
            "(the run id's time is UTC)"
        )
    if summary.resumed:
        out.append(resume_line(summary))
    out.append(
        f"  listings          {summary.listings:,} listed, {summary.unique_asins:,} unique ASINs"
    )
    if summary.pulled:  # gone, unmapped and drifted listings, and the command listing them
        out.append(f"  pulled            {summary.pulled}")
    if summary.budget_line:  # a budgeted run: what it observed, and the max-age guarantee
        out.append(f"  budget            {summary.budget_line}")
        if summary.guarantee_note:
            out.append(f"  max age           {summary.guarantee_note}")
    lanes = ", ".join(
        f"{pool.LANES[lane][0] if lane in pool.LANES else lane} {summary.lane_calls.get(lane, 0):,} for {n:,} ASINs"
        for lane, n in summary.lane_asins.items()
    )
    out.append(
        f"  SP-API calls      {summary.spapi_calls:,} ({lanes or 'none this run'}; "
        f"least possible {summary.spapi_expected_calls:,}; retries {summary.spapi_retries}, "
        f"429s {summary.spapi_429s})"
    )
    phase2 = (
        ("not measured (live)" if summary.mode == "live" else "not measured (sandbox elsewhere)")
        if summary.phase2_spapi_calls is None
        else str(summary.phase2_spapi_calls)
    )
    out.append(f"  SP-API in Phase 2 {phase2}")
    pace = f" = {summary.pace_vs_floor:.3f} × floor" if summary.pace_vs_floor else ""
    out.append(
        f"  fetch time        {summary.fetch_seconds:.1f} s against a quota floor of "
        f"{summary.quota_floor_seconds:.1f} s{pace}"
    )
    if summary.statuses:
        statuses = ", ".join(f"{k} {v:,}" for k, v in sorted(summary.statuses.items()) if v)
        out.append(f"  Amazon answers    {statuses}")
    for platform in PLATFORMS:
        if platform not in summary.diffs and platform not in summary.pushes:
            continue
        kinds = summary.diffs.get(platform, {})
        kind_text = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()) if v) or "none"
        held = summary.held_rows.get(platform, 0)
        out.append(f"  {platform:<5} diffs       {kind_text}; held rows {held}")
        if platform in summary.held_platforms:
            out.append(f"  {platform:<5} load held   {summary.held_platforms[platform]}")
        states = summary.pushes.get(platform, {})
        state_text = ", ".join(f"{k} {v}" for k, v in sorted(states.items()) if v) or "nothing"
        out.append(
            f"  {platform:<5} pushes      {state_text} in {summary.push_calls.get(platform, 0)} calls"
        )
    protected = summary.protected
    if protected or summary.outcome == "held":
        paused = summary.paused
        out.append(
            f"  listings protected while held: {protected:,} ({protected - paused:,} raised to "
            f"a profit, {paused:,} paused at quantity 0)"
        )
    if summary.message and summary.outcome == "held":
        # the one held sentence, as a notice line of its own: the run loaded everything
        # else and waits for a person, which is news rather than an error
        out.append(summary.message)
    elif summary.message:
        out.append(f"  {summary.message}")
    return out


def sandbox_banner(ws: Workspace) -> str:
    scale = ws.settings.sandbox.time_scale
    accounts = ", ".join(a.id for a in ws.settings.accounts)
    return (
        f"Running against the sandbox (demo accounts {accounts}; rate limits {scale:g}× faster): "
        "nothing leaves this machine. To go live, copy invsync.example.toml to invsync.toml, "
        'set mode = "live" and put your credentials in .env (README: Going live).'
    )


# --- transform, review, load, listings pull -------------------------------------------------


def transform_lines(result: TransformResult) -> list[str]:
    lines = [f"Transformed run {result.run_id} in {result.seconds:.2f} s."]
    for diff in result.platforms.values():
        kinds = ", ".join(f"{kind} {n}" for kind, n in diff.kinds.items() if n) or "no changes"
        lines.append(
            f"  {diff.platform}: {diff.listings} listings → {diff.rows} to change ({kinds}); "
            f"{diff.held} held for review → {diff.path}"
        )
    if result.fx is not None and "ebay" in result.platforms:
        lines.append(f"  eBay priced at {result.fx.text} JPY/USD ({result.fx.source}).")
    return lines


def review_lines(result: ReviewResult, timezone: str) -> list[str]:
    """``invsync review``: per platform what changes, what is held and why, the largest
    moves; the run's start in ``timezone``, named."""
    started = display.run_started(result.run_id)
    when = f" (started {display.local(started, timezone)})" if started else ""
    lines = [f"Review of run {result.run_id}{when}:"]
    for platform in result.platforms.values():
        kinds = ", ".join(f"{k} {n}" for k, n in platform.kinds.items())
        lines.append(
            f"  {platform.platform}: {platform.rows} changes ({kinds}); "
            f"{platform.held_rows.height} held by a row rule, {platform.waiting} waiting for "
            f"a decision, {platform.protected} protected while they wait"
        )
        if platform.breaker.tripped:
            verdict = "released" if platform.breaker.released else "holds the whole load"
            lines.append(f"    breaker tripped ({verdict}): {'; '.join(platform.breaker.reasons)}")
        for row in platform.held_rows.head(HELD_SHOWN).iter_rows(named=True):
            lines.append(
                f"    held {row['listing_key']} ({row['asin']}, {row['change_kind']}): "
                f"{row['hold_reason']}"
            )
        if platform.held_rows.height > HELD_SHOWN:
            lines.append(f"    … and {platform.held_rows.height - HELD_SHOWN} more held rows")
        for row in platform.largest_moves.iter_rows(named=True):
            lines.append(
                f"    move {row['listing_key']} ({row['asin']}): "
                f"{money(row['old_price_minor'], row['currency'])} → "
                f"{money(row['new_price_minor'], row['currency'])} "
                f"({row['change_kind']}, {row['move_bp'] / 100:.1f} %)"
            )
    lines.append(f"Report: {result.report}")
    return lines


def load_lines(result: LoadResult) -> list[str]:
    """Lines for the terminal: per platform account what happened (or would happen)."""
    lines = []
    if result.dry_run:
        total = sum(a.calls for a in result.accounts)
        lines.append(
            f"Dry run of run {result.run_id}: {total} call(s) would be made, none was; "
            f"the plan is in {result.plan_path}."
        )
        for acct in result.accounts:
            by_operation: dict[str, int] = {}
            for call in acct.planned:
                by_operation[call["operation"]] = by_operation.get(call["operation"], 0) + 1
            ops = ", ".join(f"{n} {op}" for op, n in by_operation.items())
            lines.append(f"  {acct.platform} {acct.account_id}: {acct.rows} row(s); {ops}")
            shown = 0
            for call in acct.planned:
                for row in [call.get("row"), *(call.get("rows") or [])]:
                    if row is None or shown >= PREVIEW_ROWS:
                        continue
                    shown += 1
                    lines.append(
                        f"    {row['listing_key']}: price "
                        f"{money(row['old_price_minor'], row['currency'])} → "
                        f"{money(row['new_price_minor'], row['currency'])}, "
                        f"stock {row['old_quantity']} → {row['new_quantity']}"
                    )
    else:
        lines.append(f"Loaded run {result.run_id} in {result.seconds:.1f} s.")
        for acct in result.accounts:
            lines.append(
                f"  {acct.platform} {acct.account_id}: {acct.ok} ok ({acct.reconciled} found "
                f"already applied), {acct.failed} failed, {acct.quarantined} quarantined, "
                f"{acct.skipped} skipped, {acct.pending} pending; {acct.calls} call(s)"
            )
        if not result.accounts:
            lines.append("  Nothing to push: every approved row is already ok.")
    if result.protected:
        lines.append(
            f"  listings protected while held: {result.protected} "
            f"({result.protected - result.paused} raised to a profit, {result.paused} paused "
            "at quantity 0 until a decision or a healthy run)"
        )
    from pipeline.review import SKIP_REASONS

    for reason, rows in result.skipped().items():
        lines.append(f"  not sent: {rows} row(s) — {SKIP_REASONS[reason]}")
    for platform, why in result.held.items():
        lines.append(f"  {platform}: held by the review gate ({why}).")
    return lines


def pull_lines(result: PullResult) -> list[str]:
    """Lines for the terminal: per account what changed, then drifted and gone listings."""
    name = DISPLAY_NAMES[result.platform]
    lines = [
        f"Pulled {result.total('seen')} {name} listing(s) in {result.seconds:.1f} s: "
        f"{result.total('inserted')} new, {result.total('updated')} updated, "
        f"{result.total('unchanged')} unchanged, {result.total('drifted')} drifted, "
        f"{result.total('gone')} gone, {result.total('unmapped')} without an ASIN."
    ]
    for acct in result.accounts:
        lines.append(
            f"  {acct.account_id}: {acct.seen} seen, {acct.inserted} new, {acct.updated} updated, "
            f"{acct.drifted} drifted, {acct.gone} gone, {acct.unmapped} unmapped, {acct.calls} calls"
            + (f", {acct.trading} on the Trading API" if acct.platform == "ebay" else "")
        )
        if acct.drifted_keys:
            lines.append(
                f"    changed by hand since our last push or pull (review holds them): "
                f"{', '.join(acct.drifted_keys)}{' …' if acct.drifted > len(acct.drifted_keys) else ''}"
            )
        if acct.platform == "ebay" and not acct.trading_complete:
            lines.append(
                "    the Trading ActiveList changed while it was read (or passed eBay's 25,000 "
                "listings): no Trading listing was marked gone — pull again to check them"
            )
        if acct.gone_keys:
            lines.append(
                f"    gone from {name}: {', '.join(acct.gone_keys)}"
                f"{' …' if acct.gone > len(acct.gone_keys) else ''}"
            )
    return lines


def probe_line(probe: Probe) -> str:
    """One ``config check --online`` answer: API, account, call, status, then the next step."""
    who = f"{probe.api} {probe.account}" if probe.account else probe.api
    line = f"{who:<22} {probe.what:<28} {probe.status:<11} {probe.said}"
    return line + (f" — next: {probe.next_step}" if probe.next_step else "")
