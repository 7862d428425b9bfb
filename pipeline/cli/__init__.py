"""The ``invsync`` command line: the only module that prints for humans or exits.

Each command is a thin wrapper over a stage's ``run`` function. Domain errors
(:mod:`pipeline.errors`) become one line ``Error: <sentence>`` and their class's
exit code; ``--debug`` shows the traceback (with secrets masked). Held for review is a
notice, not an error: its sentence is shown once, without ``Error:``, and only ``sync``
(and ``load``) keep its exit code 3 for schedulers; ``review``, which only shows, exits 0.
Exit codes: 0 done, 2 usage or configuration, 3 held for review, 4 an outside API failed,
1 a bug.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console

from pipeline import display
from pipeline.apis import AMAZON, ENDPOINT_VARS, PLATFORM_APIS, open_apis
from pipeline.cli import render
from pipeline.cli.auth import auth_app
from pipeline.cli.listings import listings_show
from pipeline.cli.options import bounded, port_option
from pipeline.cli.warehouse import warehouse_app
from pipeline.cli.whatif import whatif_command
from pipeline.config import (
    Workspace,
    data_dir_problem,
    describe_settings,
    open_workspace,
    read_environment,
)
from pipeline.errors import (
    ConfigError,
    HeldForReviewError,
    InputError,
    InvsyncError,
    MissingCredentialError,
    TransientApiError,
    UsageError,
)
from pipeline.logs import configure_logging
from pipeline.platforms import DISPLAY_NAMES
from pipeline.redact import redact, secret_values

# Not a terminal (cron, pipes, CI): no wrapping and room for the run table.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, soft_wrap=True)

app = typer.Typer(
    name="invsync",
    help="Keep BASE and eBay listings in step with Amazon.co.jp: extract, fetch once, "
    "transform, review, load.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
listings_app = typer.Typer(help="Import or pull the listing tables.", no_args_is_help=True)
sandbox_app = typer.Typer(help="The loopback sandbox marketplace.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(listings_app, name="listings")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(config_app, name="config")
app.add_typer(auth_app, name="auth")  # pipeline/cli/auth.py
app.add_typer(warehouse_app, name="warehouse")  # pipeline/cli/warehouse.py


# Commands that only read the data directory (config check reports an unwritable one).
READ_ONLY_COMMANDS = frozenset({"runs", "history", "config", "sandbox", "sql"})


@dataclass
class CliState:
    config: Path | None = None
    data_dir: Path | None = None
    debug: bool = False
    writes: bool = False  # the command writes in the data directory: it must be writable
    _workspace: Workspace | None = field(default=None, repr=False)

    def workspace(self) -> Workspace:
        if self._workspace is None:
            ws = open_workspace(self.config, self.data_dir)
            problem = data_dir_problem(ws.data_dir) if self.writes else None
            if problem:  # before anything starts: no run opened, nothing half-written
                raise ConfigError(problem)
            self._workspace = ws
        return self._workspace


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):  # commands invoked without the root callback
        obj = CliState()
        ctx.find_root().obj = obj
    return obj


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", help="Configuration file (default ./invsync.toml).")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Data directory (default ./data).")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    """invsync: Amazon → BASE / eBay price and stock sync."""
    writes = ctx.invoked_subcommand not in READ_ONLY_COMMANDS
    ctx.obj = CliState(config=config, data_dir=data_dir, debug=debug, writes=writes)


def _not_built(command: str, issue: int) -> UsageError:
    return UsageError(
        f"`invsync {command}` is not built yet (issue {issue}); "
        "run `invsync --help` for the commands that work today."
    )


# --- option bounds ---------------------------------------------------------------------
# Every number a command takes is checked while the command line is read, before anything
# starts (no run is opened, no file written): a callback raises one UsageError sentence.


_MAX_ITEMS = typer.Option(
    "--max-items",
    help="Limit a trial run to N ASINs (1 or more).",
    callback=bounded("--max-items", 1, example="--max-items 50"),
)


# --- configuration -------------------------------------------------------------------


@config_app.command("check")
def config_check(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    online: Annotated[
        bool,
        typer.Option(
            "--online",
            help="Also refresh every token and make one cheap call per API and account.",
        ),
    ] = False,
) -> None:
    """Validate the configuration and print it with every secret redacted; --online checks
    every credential against its API."""
    from pipeline import checks
    from pipeline.auth import refresh_token_source

    ws = state(ctx).workspace()
    described = describe_settings(ws)
    described["refresh_tokens"] = {
        a.id: refresh_token_source(ws, a.id) or ("sandbox demo" if ws.is_sandbox else "none")
        for a in ws.settings.accounts
    }
    problem = checks.live_credentials_problem(ws)
    folder_problem = data_dir_problem(ws.data_dir)
    warning = checks.dotenv_warning()
    probes: list[checks.Probe] = []
    if online and problem is None:
        with open_apis(ws, needs=ENDPOINT_VARS) as apis:
            probes = checks.probe_online(apis.ws)
    if as_json:
        described["problems"] = [p for p in (problem, folder_problem) if p]
        described["warnings"] = [warning] if warning else []
        if online:
            described["online"] = [dataclasses.asdict(p) for p in probes]
        console.print_json(json.dumps(described))
    else:
        _print_config(ws, described)
        if warning:
            err_console.print(f"warning: {render.plain(warning)}")
        for probe in probes:
            _say(render.probe_line(probe))
    if problem:
        raise MissingCredentialError(problem)
    if folder_problem:
        raise ConfigError(folder_problem)
    if any(p.status == "refused" for p in probes):
        raise ConfigError(
            f"{sum(p.status == 'refused' for p in probes)} of {len(probes)} API checks were "
            "refused; follow the next step printed beside each, then run "
            "`invsync config check --online` again."
        )
    if any(p.status == "unreachable" for p in probes):
        raise TransientApiError(
            f"{sum(p.status == 'unreachable' for p in probes)} of {len(probes)} API checks got "
            "no usable answer; check the network and the platforms' status pages, then run "
            "`invsync config check --online` again.",
            operation="config check",
            http_status=None,
        )
    if not as_json:
        done = "Configuration is valid" + (", and every API accepted it." if online else ".")
        console.print(f"[green]{done}[/green]")


def _print_config(ws: Workspace, described: dict[str, Any]) -> None:
    console.print(f"config file: {render.plain(described['config_file'])}")
    console.print(f"data dir:    {render.plain(described['data_dir'])}")
    console.print(f"mode:        {ws.settings.mode}")
    console.print_json(json.dumps(described["settings"]))
    console.print("secrets (values never shown):")
    for name, status in described["secrets"].items():
        console.print(f"  {name:<28} {status}")
    console.print("refresh tokens (store: `invsync auth`; env: the account's variable):")
    for account_id, source in described["refresh_tokens"].items():
        console.print(f"  {render.plain(account_id):<28} {source}")
    console.print("endpoints:")
    for name, value in described["endpoints"].items():
        console.print(f"  {name:<28} {render.plain(value)}")


# --- listings --------------------------------------------------------------------------


@listings_app.command("import")
def listings_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A CSV or Parquet file of listings.")],
    platform: Annotated[str, typer.Option("--platform", help="base or ebay.")],
    account: Annotated[
        str | None,
        typer.Option("--account", help="Fills account_id when the file has no such column."),
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option(
            "--encoding",
            help="The CSV's encoding (utf-8, utf-8-sig, cp932, shift_jis…); default: UTF-8, "
            'else CP932 (Japanese Excel\'s "CSV").',
        ),
    ] = None,
) -> None:
    """Import listings from CSV or Parquet; an invalid file is rejected whole."""
    from pipeline import listings

    if encoding is not None:
        listings.check_encoding(encoding)  # an unknown name stops before anything is read
    ws = state(ctx).workspace()
    counts = listings.import_file(ws, file, platform=platform, account=account, encoding=encoding)
    read_as = f" (read as {counts.encoding})" if counts.encoding else ""
    console.print(
        f"Imported {render.plain(file.name)}{read_as} into listings_{platform}: "
        f"{counts.inserted} inserted, {counts.updated} updated, {counts.unchanged} unchanged."
    )
    if counts.ignored_columns:
        console.print(f"Ignored columns: {render.plain(', '.join(counts.ignored_columns))}.")


@listings_app.command("pull")
def listings_pull(
    ctx: typer.Context,
    platform: Annotated[str, typer.Option("--platform", help="base or ebay.")],
    account: Annotated[str | None, typer.Option("--account", help="One account only.")] = None,
) -> None:
    """Refresh the listing tables from the platforms' APIs; report gone and drifted listings."""
    from pipeline import listings_pull

    with _platform_apis(state(ctx).workspace()) as (ws, con):
        result = listings_pull.run(ws, con, platform, account)
    sentence = listings_pull.summary_sentence([result])
    _say_all(render.pull_lines(result) + ([sentence] if sentence else []))


listings_app.command("show")(listings_show)  # pipeline/cli/listings.py
app.command("sql")(__import__("pipeline.cli.sql", fromlist=["sql_command"]).sql_command)
app.command("whatif")(whatif_command)  # pipeline/cli/whatif.py


# --- stages ----------------------------------------------------------------------------


@app.command()
def extract(
    ctx: typer.Context,
    max_items: Annotated[int | None, _MAX_ITEMS] = None,
) -> None:
    """Phase 1: collect every listed ASIN of every platform into one deduplicated frame."""
    from pipeline import extract as extract_stage
    from pipeline.warehouse import opened

    ws = state(ctx).workspace()
    with opened(ws.data_dir) as con:
        result = extract_stage.run(ws, con, max_items)
    _print_extract(result)


@contextmanager
def _platform_apis(ws: Workspace) -> Iterator[tuple[Workspace, Any]]:
    """What ``load`` and ``listings pull`` run in: logging, the BASE and eBay APIs (the
    sandbox started here when they are not given) and the warehouse."""
    from pipeline import warehouse

    configure_logging(ws.data_dir, ws.env, timezone=ws.settings.display.timezone)
    with open_apis(ws, needs=PLATFORM_APIS) as apis, warehouse.opened(ws.data_dir) as con:
        if apis.started_sandbox:
            _say(_sandbox_line(apis))
        yield apis.ws, con


def _sandbox_line(apis: Any) -> str:
    return (
        f"Sandbox mode: the APIs are an in-process sandbox at {apis.sandbox.url} (time scale "
        f"{apis.ws.settings.sandbox.time_scale:g}); nothing leaves this machine."
    )


def _print_extract(result: Any) -> None:
    platforms = ", ".join(f"{p} {n}" for p, n in sorted(result.by_platform().items()))
    console.print(
        f"Extracted {result.unique_asins} unique ASINs from {result.listings} listed listings"
        f" ({platforms or 'no platform'}); {result.valid.height} valid.",
        markup=False,
        highlight=False,
    )
    if result.malformed.height:
        console.print(
            f"{result.malformed.height} malformed ASINs are reported and never sent "
            f"(e.g. {', '.join(result.malformed_examples)}); fix them in the listing tables.",
            markup=False,
            highlight=False,
        )


@app.command()
def fetch(
    ctx: typer.Context,
    resume: Annotated[
        bool, typer.Option("--resume", help="Fetch only the ASINs an interrupted run lacks.")
    ] = False,
    max_items: Annotated[int | None, _MAX_ITEMS] = None,
) -> None:
    """Phase 1: fetch Amazon price and stock once for every ASIN into a Parquet snapshot."""
    from pipeline import extract as extract_stage
    from pipeline import fetch as fetch_stage
    from pipeline import runs as run_book
    from pipeline.lock import run_lock
    from pipeline.warehouse import RUN_WAIT_SECONDS, opened

    if resume and max_items is not None:
        raise UsageError("--resume fetches what the interrupted run planned; drop --max-items.")
    ws = state(ctx).workspace()
    # one SP-API caller at a time (a sync's fetch shares the quota); the warehouse is held
    # only before and after the network loop, as in a sync
    with run_lock(ws.data_dir, "fetch"), open_apis(ws, needs=AMAZON) as apis:
        api_ws = apis.ws
        if apis.started_sandbox:
            _say(_sandbox_line(apis))
        with opened(ws.data_dir) as con:
            asins = None
            if resume:
                run_id = fetch_stage.resumable_run(con)
                run_book.resume_run(con, ws, run_id)
                console.print(f"Resuming run {run_id}.", markup=False, highlight=False)
            else:
                for orphan in fetch_stage.close_orphans(con):  # we hold the lock: theirs died
                    _say(
                        f"Run {orphan} was left running by a fetch that was killed; it is now "
                        "interrupted, and `invsync fetch --resume` continues it."
                    )
                run_id = run_book.start_run(con, ws, "fetch")
                extracted = extract_stage.run(ws, con, max_items, run_id=run_id)
                _print_extract(extracted)
                asins = extracted.asins
        try:
            with opened(ws.data_dir) as con:
                prepared = fetch_stage.prepare(api_ws, con, run_id, asins, resume=resume)
            collected = fetch_stage.collect(api_ws, prepared, progress=_fetch_progress())
            with opened(ws.data_dir, wait=RUN_WAIT_SECONDS) as con:
                result = fetch_stage.record(con, prepared, collected)
        except InvsyncError:
            raise  # fetch recorded the run's outcome
        except BaseException:
            with opened(ws.data_dir, wait=RUN_WAIT_SECONDS) as con:
                run_book.finish_run(con, run_id, "failed", "fetch stopped on an unexpected error")
            raise
        counters = result.counters
        console.print(
            f"Run {run_id}: {result.sent_asins} ASINs fetched in {counters.calls} calls "
            f"({counters.throttled} 429s, {counters.retries} retries) in {result.seconds:.1f} s "
            f"(quota floor {result.quota_floor_seconds:.1f} s); "
            + ", ".join(f"{n} {s}" for s, n in sorted(result.statuses.items()))
            + f". Snapshot: {result.snapshot}",
            markup=False,
            highlight=False,
        )
        if result.interrupted:
            console.print(
                f"Interrupted: the snapshot holds what was fetched; run `invsync fetch --resume` "
                f"to fetch the rest of run {run_id}.",
                markup=False,
                highlight=False,
            )
            raise typer.Exit(128 + int(result.interrupted_by or 2))
        with opened(ws.data_dir, wait=RUN_WAIT_SECONDS) as con:
            run_book.finish_run(con, run_id, "ok")


@app.command()
def transform(
    ctx: typer.Context,
    run: Annotated[str | None, typer.Option("--run", help="Run id (default: latest).")] = None,
) -> None:
    """Phase 2: price the snapshot against the listings; write per-platform diffs."""
    from pipeline import transform as transform_stage
    from pipeline.warehouse import opened

    ws = state(ctx).workspace()
    with opened(ws.data_dir) as con:
        result = transform_stage.run(ws, con, run)
    _say_all(render.transform_lines(result))


@app.command()
def review(
    ctx: typer.Context,
    run: Annotated[str | None, typer.Option("--run", help="Run id (default: latest).")] = None,
    serve: Annotated[
        bool, typer.Option("--serve", help="Open the review workbench on 127.0.0.1.")
    ] = False,
    port: Annotated[int, port_option("Workbench port (0: a free one).")] = 0,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the workbench URL; open no browser.")
    ] = False,
) -> None:
    """Phase 2: show the diff, held rows and the run-level breaker; write review.html.

    Only looking is never an error: this exits 0 even when rows are held, and says what is
    held (and how to release it) once, as a notice. With --serve, a local page to decide
    row by row (approve, reject, hold), until Ctrl-C."""
    from pipeline import review as review_stage
    from pipeline.warehouse import opened

    ws = state(ctx).workspace()
    with opened(ws.data_dir, read_only=True) as con:  # looking never needs write access
        result = review_stage.run(ws, con, run, record=False)
    _say_all(render.review_lines(result, ws.settings.display.timezone))
    message = result.hold_message()
    if message and not serve:
        _say(message)
    if serve:
        from pipeline.workbench.server import ready_line
        from pipeline.workbench.server import serve as serve_workbench

        def announce(url: str) -> None:
            _say(ready_line(url))
            sys.stdout.flush()

        breakers = {p: r.breaker for p, r in result.platforms.items()}
        frames = {p: d.drop("decision") for p, d in result.diffs.items()}  # read once
        serve_workbench(
            ws,
            result.run_id,
            breakers=breakers,
            diffs=frames,
            open_browser=not no_browser,
            port=port,
            on_ready=announce,
        )


_RUN_ARG = typer.Argument(help="The run (default: the newest with a diff).")
_PLATFORM_OPT = typer.Option("--platform", help="base or ebay (default: both).")
_ACCOUNT_OPT = typer.Option("--account", help="Only rows of this account (repeatable).")
_LISTING_OPT = typer.Option(
    "--listing", help="Only this row: BASE item_id or eBay SKU (repeatable)."
)
_REASON_OPT = typer.Option("--reason", help="Only held rows whose hold reason contains this.")
_DECISIONS = {  # command -> what it records, and its help
    "approve": (
        "Approved",
        "Approve held rows (all, a filtered set, or one): the next load pushes them.\n\n"
        "Approving a whole platform (`--platform P` and no other filter) also releases its "
        "tripped breaker for this run. Works while a sync runs.",
    ),
    "reject": (
        "Rejected",
        "Reject rows: no load pushes these changes (a protective pause still stands).",
    ),
    "hold": (
        "Kept holding",
        "Keep rows waiting: clears an earlier approve or reject of the same change.",
    ),
}


def _decision_command(decision: str) -> Any:
    """``invsync approve|reject|hold``: one command per decision, the same row filters."""
    verb, help_text = _DECISIONS[decision]

    def command(
        ctx: typer.Context,
        run: Annotated[str | None, _RUN_ARG] = None,
        platform: Annotated[str | None, _PLATFORM_OPT] = None,
        account: Annotated[list[str] | None, _ACCOUNT_OPT] = None,
        listing: Annotated[list[str] | None, _LISTING_OPT] = None,
        reason: Annotated[str | None, _REASON_OPT] = None,
    ) -> None:
        from pipeline import review as review_stage

        ws = state(ctx).workspace()
        run_id, results = review_stage.decide(
            ws,
            run,
            decision,
            platform=platform,
            accounts=account,
            listing_keys=listing,
            reason=reason,
        )
        shown = [r for r in results if r.rows or r.breaker_released] or results[:1]
        for result in shown:
            released = " and released its tripped breaker" if result.breaker_released else ""
            _say(
                f"{verb} {result.rows} {DISPLAY_NAMES[result.platform]} row(s) of run "
                f"{run_id}{released}."
            )
        if decision == "approve":
            _say(
                "`invsync load` pushes them while each listing still shows the old values and "
                "its Amazon observation is younger than max_source_age; a later sync that "
                "proposes the same change applies the same decision."
            )

    command.__doc__ = help_text
    return command


for _name in _DECISIONS:
    app.command(_name)(_decision_command(_name))


@app.command()
def load(
    ctx: typer.Context,
    run: Annotated[str | None, typer.Option("--run", help="Run id (default: latest).")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print and record the calls; make none.")
    ] = False,
) -> None:
    """Push only the approved changed rows to BASE and eBay through the journal."""
    from pipeline import load as load_stage

    run_id = run
    try:
        with _platform_apis(state(ctx).workspace()) as (ws, con):
            result = load_stage.run(ws, con, run, dry_run=dry_run, raise_on_failure=False)
        run_id = result.run_id
        _say_all(render.load_lines(result))
        load_stage.raise_for_outcome(result)
    except BaseException as exc:
        _log_outcome("load", run_id, exc)
        raise
    _log_outcome("load", run_id, None)


_BUDGET_OPTION = typer.Option(
    "--budget",
    help="Quota time such as 15m (most urgent ASINs first), or all (default: [fetch] budget).",
)


@app.command()
def sync(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Run every stage but push nothing.")
    ] = False,
    budget: Annotated[str | None, _BUDGET_OPTION] = None,
) -> None:
    """The whole run: extract, fetch, transform, review, load (sandbox demo without credentials)."""
    seconds = _budget(budget)
    ws = state(ctx).workspace()
    configure_logging(
        ws.data_dir, ws.env, verbose=state(ctx).debug, timezone=ws.settings.display.timezone
    )
    _sync_once(ws, dry_run=dry_run, budget=seconds)


def _budget(text: str | None) -> float | Literal["settings"] | None:
    """``--budget``: ``"settings"`` when not given (``[fetch] budget``), None for ``all``,
    else seconds of quota time; exit 2 for anything else."""
    from pipeline.config import parse_budget

    if text is None:
        return "settings"
    try:
        return parse_budget(text)
    except ValueError:
        raise UsageError(
            f"--budget {text!r} is not 'all' or a duration above zero such as 90s, 15m or 1h."
        ) from None


def _sync_once(
    ws: Workspace,
    *,
    dry_run: bool = False,
    stop: Any = None,
    budget: float | Literal["settings"] | None = "settings",
) -> str:
    """One sync as the terminal shows it: the banner, the run, its summary, its alert, its
    exit class. Returns the outcome of a run that was ok or interrupted; a held run raises
    :class:`HeldForReviewError` marked ``shown`` (exit 3, its sentence already in the
    summary), a failed one its error. An alert (``[notify]``) goes out for every held or failed run; sending it never
    changes the exit code. Every way it ends is one ``run_outcome`` line in the log."""
    from pipeline import runs as run_book

    opened = len(run_book.opened_here())
    try:
        summary = _sync_shown(ws, dry_run=dry_run, stop=stop, budget=budget)
    except BaseException as exc:  # the run this call started or resumed, if it got that far
        _log_outcome("sync", _last_id(run_book.opened_here()[opened:]), exc)
        raise
    _log_outcome("sync", summary.run_id, None, summary.outcome, summary.message)
    return summary.outcome


def _sync_shown(
    ws: Workspace, *, dry_run: bool, stop: Any, budget: float | Literal["settings"] | None
) -> Any:
    """The sync with its banner, summary and alert; raises its exit class (a held run's
    :class:`HeldForReviewError` marked ``shown``). Returns the summary of an ok or
    interrupted run."""
    from pipeline import notify
    from pipeline import sync as sync_stage

    if ws.is_sandbox:
        _say(render.sandbox_banner(ws))
    try:
        summary = sync_stage.run(
            ws, dry_run=dry_run, progress=_fetch_progress(), stop=stop, budget=budget
        )
    except (UsageError, ConfigError):
        raise  # nothing ran (a bad option or setting, another sync holds the lock)
    except Exception as exc:  # the run stopped on an error: it was recorded failed
        notify.after_failed_sync(ws, exc)
        raise
    _say_all(render.sync_summary_lines(summary, ws.settings.display.timezone))
    notify.after_sync(ws, summary)
    try:
        sync_stage.raise_for_outcome(summary)
    except HeldForReviewError as exc:
        exc.shown = True  # the summary's last line: main() prints nothing more
        raise
    return summary


def _last_id(opened: list[tuple[Path, str]]) -> str | None:
    return opened[-1][1] if opened else None


def _exit_of(exc: BaseException | None) -> tuple[int, str | None, str | None]:
    """The exit code, exit class name and message a command ending with ``exc`` has."""
    if exc is None:
        return 0, None, None
    if isinstance(exc, InvsyncError):
        return exc.exit_code, type(exc).__name__, exc.message
    if isinstance(exc, typer.Exit | SystemExit):
        code = exc.exit_code if isinstance(exc, typer.Exit) else exc.code
        number = code if isinstance(code, int) else (0 if code is None else 1)
        return number, None if number == 0 else type(exc).__name__, None
    if isinstance(exc, KeyboardInterrupt):
        return 130, type(exc).__name__, "Stopped by Ctrl-C."
    name = type(exc).__name__
    return 1, name, f"invsync hit a bug ({name}); run again with --debug for the traceback."


def _outcome_of(code: int, exc: BaseException | None) -> str:
    if isinstance(exc, HeldForReviewError):
        return "held"
    if code == 0:
        return "ok"
    return "interrupted" if code >= 128 else "failed"


def _log_outcome(
    command: str,
    run_id: str | None,
    exc: BaseException | None,
    outcome: str | None = None,
    said: str | None = None,
) -> None:
    """The ``run_outcome`` line of one run (or command) in the JSON-lines log; ``said``:
    the sentence the terminal showed, when no error carries one."""
    from pipeline.logs import event

    code, exit_class, message = _exit_of(exc)
    message = message or said
    outcome = outcome if exc is None and outcome else _outcome_of(code, exc)
    event(
        "run_outcome",
        run_id=run_id,
        command=command,
        outcome=outcome,
        exit_code=code,
        exit_class=exit_class,
        message=message or f"{command} run {run_id or ''} ended {outcome}.".replace("  ", " "),
    )


def _say(line: str) -> None:
    console.print(line, markup=False, highlight=False)


def _say_all(lines: list[str]) -> None:
    for line in lines:
        _say(line)


def _fetch_progress() -> Any:
    """A rich progress bar on a terminal, plain lines otherwise (cron, CI, pipes)."""
    if console.is_terminal:
        return render.RichProgress(console)
    return render.LineProgress(_say)


@app.command()
def runs(
    ctx: typer.Context,
    last: Annotated[
        int,
        typer.Option(
            "--last",
            help="How many runs to show (1 or more).",
            callback=bounded("--last", 1, example="--last 10"),
        ),
    ] = 10,
) -> None:
    """A table of recent runs: outcome, calls, 429s, fetch time against the floor, pushes."""
    from rich.table import Table

    from pipeline import history as reports
    from pipeline import history_store

    ws = state(ctx).workspace()
    with reports.reading(ws.data_dir, history_store.store(ws)) as con:
        frame = reports.recent_runs(con, last)
    if frame.is_empty():
        console.print("No runs yet; start one with `invsync sync`.")
        return
    timezone = ws.settings.display.timezone
    table = Table(title=f"Last {frame.height} run(s); {display.zone_note(timezone)}")
    columns = [
        ("run", "run_id"), ("started", "started_at"), ("outcome", "outcome"),
        ("asins", "unique_asins"), ("calls", "spapi_calls"), ("429s", "spapi_429s"),
        ("retries", "spapi_retries"), ("fetch s", "fetch_seconds"),
        ("floor s", "quota_floor_seconds"), ("pace", "pace_vs_floor"), ("diffs", "diffs"),
        ("held", "holds"), ("pushed", "pushes"), ("failed", "push_failures"),
    ]  # fmt: skip
    for title, _ in columns:
        left = title in ("run", "started", "outcome")
        table.add_column(title, justify="left" if left else "right")
    for row in frame.iter_rows(named=True):
        table.add_row(*render.run_cells(row, columns, timezone))
    console.print(table)


@app.command()
def history(
    ctx: typer.Context,
    asin: Annotated[str, typer.Argument(help="The ASIN to show.")],
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a PNG chart here.")] = None,
) -> None:
    """Price and stock of one ASIN over time, with a terminal sparkline."""
    from pipeline import history as reports
    from pipeline import history_store

    ws = state(ctx).workspace()
    with reports.reading(ws.data_dir, history_store.store(ws)) as con:
        frame = reports.asin_history(con, asin)
    if frame.is_empty():
        console.print(f"No observation of {render.plain(asin)} yet.")
        return
    _say_all(render.history_lines(frame, asin, ws.settings.display.timezone))
    if plot is not None:
        reports.plot_history(frame, asin, plot, ws.settings.display.timezone)
        console.print(f"Wrote {render.plain(plot)}.")


@app.command()
def daemon(
    ctx: typer.Context,
    every: Annotated[
        str | None, typer.Option("--every", help="Interval such as 3h (default 3h).")
    ] = None,
    jitter: Annotated[
        str, typer.Option("--jitter", help="Random delay added to each interval.")
    ] = "0s",
    continuous: Annotated[
        bool,
        typer.Option("--continuous", help="Start each sync as the last ends (not with --every)."),
    ] = False,
    budget: Annotated[str | None, _BUDGET_OPTION] = None,
) -> None:
    """Run sync on an interval (or back to back), never overlapping; SIGTERM stops cleanly."""
    from pipeline.daemon import parse_interval, run_daemon

    if continuous and every is not None:
        raise UsageError("--continuous runs syncs back to back; leave out --every (or drop it).")
    interval = parse_interval(every or "3h", "--every")
    spread = parse_interval(jitter, "--jitter")
    seconds = _budget(budget)
    ws = state(ctx).workspace()
    configure_logging(
        ws.data_dir, ws.env, verbose=state(ctx).debug, timezone=ws.settings.display.timezone
    )

    def once(stop: Any) -> str:
        return _sync_once(ws, stop=stop, budget=seconds)

    result = run_daemon(once, interval, spread, continuous=continuous)
    _say(result.sentence())
    _log_outcome(
        "daemon", None, None, "stopped" if result.stopped_by_signal else "ok", result.sentence()
    )


@sandbox_app.command("serve")
def sandbox_serve(
    port: Annotated[int, port_option("0 picks a free port.")] = 8765,
    time_scale: Annotated[
        float, typer.Option("--time-scale", help="Every rate limit N times faster.")
    ] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Catalogue seed.")] = 42,
    faults: Annotated[str | None, typer.Option("--faults", help="Fault spec, see docs.")] = None,
    process: Annotated[
        str | None,
        typer.Option("--process", help="Amazon changes in time: a JSON spec or a preset (day)."),
    ] = None,
) -> None:
    """Serve the sandbox marketplace (SP-API, BASE, eBay) on 127.0.0.1."""
    from pipeline.sandbox.process import ProcessSpec
    from pipeline.sandbox.server import SandboxServer, serve_forever

    def announce(server: SandboxServer) -> None:
        console.print(f"sandbox serving on {server.url} (time scale {time_scale:g}, seed {seed})")
        console.print("export these to point invsync at it (demo credentials apply by themselves):")
        for name in ("SP_API_ENDPOINT", "LWA_ENDPOINT", "BASE_API_URL", "EBAY_API_URL"):
            console.print(f"export {name}={server.url}", markup=False, highlight=False)
        if process is not None:
            console.print(f"Amazon changes in sandbox time (process {process}).", markup=False)
        console.print("Ctrl-C stops it.")
        sys.stdout.flush()

    try:
        spec = None if process is None else ProcessSpec.from_json(process)
        serve_forever(port, time_scale, seed, faults, on_ready=announce, process=spec)
    except ValueError as exc:  # a bad --faults or --process spec or --time-scale: our message
        raise UsageError(f"The sandbox cannot start: {exc}.") from None
    except OSError:
        raise UsageError(
            f"Port {port} on 127.0.0.1 is not free; pick another with --port (0 picks a free one)."
        ) from None


# --- entry point -----------------------------------------------------------------------


def _notice(line: str) -> None:
    """A notice on stderr (not an error): e.g. that the command waits for the warehouse."""
    err_console.print(line, markup=False, highlight=False)


def _print_error(exc: InvsyncError, secrets: list[str]) -> None:
    err_console.print(f"Error: {redact(exc.message, secrets)}", markup=False, highlight=False)
    if isinstance(exc, InputError):
        for problem in exc.problems[:50]:
            err_console.print(f"  {redact(str(problem), secrets)}", markup=False, highlight=False)
        if len(exc.problems) > 50:
            err_console.print(f"  … and {len(exc.problems) - 50} more", markup=False)


_RECORDED = ("sync", "fetch", "load", "daemon")  # commands whose outcome the log tells


def _command_of(args: list[str]) -> str | None:
    """The command word of ``args`` (after the root options), e.g. ``sync``."""
    words = iter(args)
    for word in words:
        if word in ("--config", "--data-dir"):
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def _run_app(args: list[str], wait_notices: Any) -> None:
    with wait_notices(_notice):
        app(args=args, prog_name="invsync")


def _recorded(command: str | None, work: Any) -> None:
    """Run the command; whatever way it ends, no run it opened stays ``running`` (an error
    records it failed with the error as reason), and a recorded command whose run wrote no
    ``run_outcome`` line (``fetch``; any command stopped before its run) gets one; the
    daemon always writes its own."""
    from pipeline import runs as run_book
    from pipeline.logs import outcomes_written

    run_book.forget_opened()
    written = outcomes_written()
    try:
        work()
    except BaseException as exc:
        _after(command, exc, written)
        raise
    _after(command, None, written)


def _after(command: str | None, exc: BaseException | None, written: int) -> None:
    from pipeline import runs as run_book
    from pipeline.logs import outcomes_written

    code, exit_class, message = _exit_of(exc)
    opened = run_book.opened_here()
    if code != 0 and not isinstance(exc, HeldForReviewError):
        reason = f"Stopped by {exit_class}: {message}" if message else f"Stopped by {exit_class}."
        _close_left_running(opened, _outcome_of(code, exc), reason)
    if command in _RECORDED and outcomes_written() == written:
        _log_outcome(command, _last_id(opened), exc)


def _close_left_running(opened: list[tuple[Path, str]], outcome: str, reason: str) -> None:
    """Record every run this process opened and left ``running`` with ``outcome``."""
    import logging

    from pipeline import runs as run_book
    from pipeline import warehouse

    for data_dir in dict.fromkeys(where for where, _ in opened):
        try:
            with warehouse.opened(data_dir) as con:
                run_book.close_left_running(con, data_dir, reason, outcome)
        except Exception as problem:  # never hide the command's own error behind this one
            logging.getLogger("invsync").warning(
                "A run in %s could not be recorded as %s (%s); the next sync finds it.",
                data_dir,
                outcome,
                type(problem).__name__,
            )


def main(argv: list[str] | None = None) -> None:
    """Entry point. Typer handles usage errors itself (exit 2); our errors are caught here."""
    from pipeline.warehouse import wait_notices

    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        _recorded(_command_of(args), lambda: _run_app(args, wait_notices))
    except HeldForReviewError as exc:  # a notice, not an error: exit 3, shown once, no prefix
        if not exc.shown:
            secrets = secret_values(read_environment())
            err_console.print(redact(exc.message, secrets), markup=False, highlight=False)
        sys.exit(exc.exit_code)
    except InvsyncError as exc:
        secrets = secret_values(read_environment())
        if debug:
            err_console.print(redact(traceback.format_exc(), secrets), markup=False)
        _print_error(exc, secrets)
        sys.exit(exc.exit_code)
    except Exception as exc:
        secrets = secret_values(read_environment())
        if debug:
            err_console.print(redact(traceback.format_exc(), secrets), markup=False)
        err_console.print(
            f"Error: invsync hit a bug ({type(exc).__name__}); run again with --debug "
            "for the traceback and report it.",
            markup=False,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
