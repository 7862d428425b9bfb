"""The Dagster assets, job, schedules and sensors: invsync's stages as software-defined assets, one partition per seller.

Stage: all of them, through :func:`pipeline.orchestration.runner.run_seller`, which calls the
same :func:`pipeline.sync.run` as ``invsync sync``. Reads ``sellers.toml``
(:func:`~pipeline.orchestration.sellers.find_registry`) when the code location loads; writes
nothing itself (each seller's run writes its own data directory).

* **Assets** ``invsync/listings → asins → snapshot → diffs → review → pushes``, partitioned
  by seller (the dynamic partitions ``sellers``). One multi-asset computes them: the six
  stages of one run share its run id, its run lock, its journal and (in sandbox mode) the
  in-process sandbox, and a resumed run re-enters them where the journal says, so they run
  in one process in order, exactly as ``invsync sync`` runs them; each asset is materialised
  with what its stage did (counts, files, calls) as metadata.
* **One run per seller at a time**: every run carries its seller's partition tag, and
  the shipped ``dagster.yaml`` (:data:`DAGSTER_YAML`) limits runs per ``dagster/partition``
  value to one; the seller's run lock (``sync.lock``) refuses a second one anyway.
* **Retries for exit 4 only**: a run failed by an outside API (exit class 4) is retried by
  the asset's :class:`RetryPolicy` ([orchestration] ``max_retries``, ``retry_delay``,
  doubling); any other failure (a setting, an input, a bug) raises ``Failure`` with
  ``allow_retries=False``, since running it again fails the same way.
* **Schedules**: one per seller (``schedule`` in ``sellers.toml``), requesting that seller's
  partition; a budgeted seller (``budget = "15m"``) every 15 minutes is the continuous mode.
* **Sensors**: ``invsync_sellers`` adds and removes the partitions as ``sellers.toml``
  changes; ``invsync_held_alert`` and ``invsync_failed_alert`` send each held or failed run
  to that seller's ``[notify]`` URLs (:mod:`pipeline.notify`), as ``invsync sync`` does.
"""

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from pipeline import notify
from pipeline import runs as run_book
from pipeline.orchestration.runner import exit_code, run_seller
from pipeline.orchestration.sellers import Registry, Seller
from pipeline.platforms import PLATFORMS

PARTITIONS = "sellers"  # the dynamic partitions: one per seller id
SELLERS = dg.DynamicPartitionsDefinition(name=PARTITIONS)
STAGES = ("listings", "asins", "snapshot", "diffs", "review", "pushes")
GROUP = "invsync"
JOB = "invsync_sync"
TAG_OUTCOME = "invsync/outcome"  # ok, held, failed, interrupted
TAG_RUN = "invsync/run_id"  # invsync's own run id (runs table, review, workbench)
TAG_MESSAGE = "invsync/message"  # the held or failed sentence
RETRIED_EXIT = 4  # an outside API failed the run: the only class a retry can mend
# pipeline/orchestration/dagster.yaml: the run queue lets one run per partition tag through
DAGSTER_YAML = Path(__file__).with_name("dagster.yaml")

_DESCRIPTIONS = {
    "listings": "Every platform's listings as pulled for the run (BASE shops, eBay).",
    "asins": "The run's deduplicated ASINs, and for a budgeted run the ones it observes.",
    "snapshot": "The run's Amazon observations: one SP-API fetch, Parquet under snapshots/.",
    "diffs": "Per-platform diffs: the listings whose price or stock must change.",
    "review": "The review gate's verdicts: rows and loads held, and the report.",
    "pushes": "What the load sent to BASE and eBay through the journal.",
}


def _key(stage: str) -> dg.AssetKey:
    return dg.AssetKey([GROUP, stage])


def _specs() -> list[dg.AssetSpec]:
    specs = []
    for index, stage in enumerate(STAGES):
        deps = [_key(STAGES[index - 1])] if index else []
        specs.append(
            dg.AssetSpec(_key(stage), deps=deps, description=_DESCRIPTIONS[stage], group_name=GROUP)
        )
    return specs


def _metadata(run: Any, seller: Seller) -> dict[str, dict[str, Any]]:
    """Each stage's metadata from the run's summary (:class:`pipeline.sync.SyncSummary`)."""
    s = run.summary
    common = {"seller": seller.id, "invsync_run_id": s.run_id, "outcome": s.outcome}
    diffs = {f"{p}_{kind}": n for p, kinds in s.diffs.items() for kind, n in kinds.items()}
    pushes = {f"{p}_{state}": n for p, states in s.pushes.items() for state, n in states.items()}
    return {
        "listings": {
            **common,
            "listings": s.listings,
            "pulled": s.pulled or "",
            "data_dir": str(seller.data_dir),
        },
        "asins": {
            **common,
            "unique_asins": s.unique_asins,
            "valid_asins": s.valid_asins,
            "budget": s.budget_line or "full pass",
        },
        "snapshot": {
            **common,
            "spapi_calls": s.spapi_calls,
            "spapi_least_calls": s.spapi_expected_calls,
            "spapi_429s": s.spapi_429s,
            "fetch_seconds": round(s.fetch_seconds, 3),
            "pace_vs_quota_floor": round(s.pace_vs_floor or 0.0, 4),
            **{f"status_{k}": n for k, n in s.statuses.items()},
        },
        "diffs": {**common, **diffs},
        "review": {
            **common,
            **{f"held_rows_{p}": n for p, n in s.held_rows.items()},
            **{f"load_held_{p}": why for p, why in s.held_platforms.items()},
        },
        "pushes": {
            **common,
            **pushes,
            **{f"{p}_calls": n for p, n in s.push_calls.items() if p in PLATFORMS},
            "seconds": round(run.seconds, 3),
        },
    }


def build(registry: Registry, environ: Mapping[str, str] | None = None) -> dg.Definitions:
    """The code location for ``registry``'s sellers. ``environ``: where each seller's
    prefixed variables are read (the process environment when None, read at each run)."""
    policy = dg.RetryPolicy(
        max_retries=registry.orchestration.max_retries,
        delay=registry.orchestration.retry_delay,
        backoff=dg.Backoff.EXPONENTIAL,
    )

    @dg.multi_asset(
        name="invsync_run",
        specs=_specs(),
        partitions_def=SELLERS,
        can_subset=False,
        retry_policy=policy,
        compute_kind="python",
    )
    def invsync_run(context: AssetExecutionContext) -> Iterator[dg.MaterializeResult]:
        seller = registry.seller(context.partition_key)
        opened = len(run_book.opened_here())
        try:
            run = run_seller(seller, os.environ if environ is None else environ)
        except Exception as exc:
            code = exit_code(exc)
            sentence = getattr(exc, "message", None) or type(exc).__name__
            ids = run_book.opened_here()[opened:]
            _tag(context, "failed", ids[-1][1] if ids else None, sentence)
            if code == RETRIED_EXIT:
                context.log.warning(
                    f"Seller {seller.id}: an outside API failed the run (exit 4); the retry "
                    f"policy runs it again. {sentence}"
                )
                raise
            raise dg.Failure(
                description=f"Seller {seller.id}: {sentence} (exit {code}; not retried: a "
                "second run would fail the same way).",
                allow_retries=False,
            ) from exc
        summary = run.summary
        _tag(context, summary.outcome, summary.run_id, summary.message)
        metadata = _metadata(run, seller)
        for stage in STAGES:
            yield dg.MaterializeResult(asset_key=_key(stage), metadata=metadata[stage])

    job = dg.define_asset_job(
        JOB,
        selection=dg.AssetSelection.groups(GROUP),
        # multiprocess by default (each step in a process of its own); the job has one
        # step, so a run may ask for in_process and save that process (docs/orchestration.md)
        executor_def=dg.multi_or_in_process_executor,
        description="One invsync sync of one seller (its partition).",
    )
    schedules = [_schedule(seller, job) for seller in registry.sellers]
    return dg.Definitions(
        assets=[invsync_run],
        jobs=[job],
        schedules=schedules,
        sensors=[_partition_sensor(registry), *_alert_sensors(registry, job, environ)],
    )


def _tag(
    context: dg.AssetExecutionContext, outcome: str, run_id: str | None, message: str | None
) -> None:
    tags = {TAG_OUTCOME: outcome}
    if run_id:
        tags[TAG_RUN] = run_id
    if message:
        tags[TAG_MESSAGE] = message[:1000]
    context.instance.add_run_tags(context.run_id, tags)


def _schedule(seller: Seller, job: Any) -> dg.ScheduleDefinition:
    def requests(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest]:
        if seller.id not in context.instance.get_dynamic_partitions(PARTITIONS):
            context.instance.add_dynamic_partitions(PARTITIONS, [seller.id])
        yield dg.RunRequest(partition_key=seller.id)

    return dg.ScheduleDefinition(
        name=f"invsync_{seller.id.replace('-', '_')}",
        cron_schedule=seller.schedule,
        job=job,
        execution_fn=requests,
        description=f"Sync seller {seller.id} ({seller.schedule}).",
    )


def _partition_sensor(registry: Registry) -> dg.SensorDefinition:
    @dg.sensor(
        name="invsync_sellers",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def sellers(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        known = set(context.instance.get_dynamic_partitions(PARTITIONS))
        wanted = registry.ids
        requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
        new = [s for s in wanted if s not in known]
        gone = sorted(known - set(wanted))
        if new:
            requests.append(SELLERS.build_add_request(new))
        if gone:
            requests.append(SELLERS.build_delete_request(gone))
        return dg.SensorResult(dynamic_partitions_requests=requests)

    return sellers


def _alert_sensors(
    registry: Registry, job: Any, environ: Mapping[str, str] | None
) -> list[dg.SensorDefinition]:
    def send(dagster_run: Any, kind: str, fallback: str) -> None:
        seller_id = dagster_run.tags.get("dagster/partition")
        if not seller_id or seller_id not in registry.ids:
            return
        seller = registry.seller(seller_id)
        ws = seller.workspace(os.environ if environ is None else environ)
        run_id = dagster_run.tags.get(TAG_RUN)
        message = dagster_run.tags.get(TAG_MESSAGE) or fallback
        notify.send(ws, alert(seller.id, kind, run_id, message, ws.settings.display.timezone))

    @dg.run_status_sensor(
        name="invsync_held_alert",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[job],
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def held(context: dg.RunStatusSensorContext) -> None:
        if context.dagster_run.tags.get(TAG_OUTCOME) == "held":
            send(context.dagster_run, "held", "Held for review.")

    @dg.run_failure_sensor(
        name="invsync_failed_alert",
        monitored_jobs=[job],
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def failed(context: dg.RunFailureSensorContext) -> None:
        send(context.dagster_run, "failed", context.failure_event.message or "The run failed.")

    return [held, failed]


def alert(
    seller_id: str, kind: str, run_id: str | None, message: str, timezone: str
) -> notify.Alert:
    """The alert for one seller's held or failed run, as ``invsync sync`` words it, with the
    seller named (one team reads the alerts of every seller)."""
    lines = [
        f"Seller {seller_id}: run {run_id or '(not started)'} {'is held for review' if kind == 'held' else 'failed'}.",
        message,
    ]
    if run_id:
        lines += notify.started_line(run_id, timezone)
        lines.append(
            f"Open the workbench: {notify.workbench_command(run_id)} (in {seller_id}'s folder)"
        )
    title = f"invsync: seller {seller_id} run {run_id or ''} {kind}".replace("  ", " ")
    return notify.Alert(kind, run_id, title, "\n".join(lines))  # type: ignore[arg-type]
