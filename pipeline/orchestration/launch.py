"""Materialise many sellers' partitions at once from Python, each as its own Dagster run.

Stage: all of them (each run is :func:`pipeline.orchestration.runner.run_seller` in a step
process of Dagster's multiprocess executor). What the tests and ``make bench`` use, and what
an operator may use for a one-off catch-up without the daemon; a deployment launches runs
through its run queue instead (docs/orchestration.md).

Each run is executed by ``dagster.execute_job`` in a process of its own: Dagster's run
orchestration installs logging handlers per run and is not safe to drive from several
threads of one process (they deadlock on the logging lock), while runs in separate
processes share the instance's storage as ``dagster dev``'s runs do.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from pipeline.orchestration.assets import PARTITIONS, TAG_MESSAGE, TAG_OUTCOME, TAG_RUN
from pipeline.orchestration.sellers import SELLERS_ENV


@dataclass(frozen=True)
class LaunchedRun:
    """One seller's Dagster run as it ended."""

    seller: str
    dagster_run_id: str
    success: bool
    outcome: str | None  # invsync's: ok, held, failed, interrupted (None: never got that far)
    invsync_run_id: str | None
    message: str | None
    attempts: int  # 1 + the retries Dagster made
    started: float  # wall clock (time.time) of the launch, and of the end
    ended: float
    events: list[str] = field(default_factory=list)  # the run's Dagster event types, in order


EXECUTORS = ("multiprocess", "in_process")


def _one(
    sellers_file: str, home: str, seller: str, executor: str, environ: dict[str, str]
) -> LaunchedRun:
    # a forkserver's child has the environment the server started with, not the caller's
    # now: the caller's is handed over whole (each seller's prefixed variables in it)
    os.environ.clear()
    os.environ.update(environ)
    os.environ[SELLERS_ENV] = sellers_file
    from pipeline.orchestration.definitions import sync_job

    started = time.time()
    with (
        dg.DagsterInstance.from_config(home) as instance,
        dg.execute_job(
            dg.reconstructable(sync_job),
            instance=instance,
            tags={"dagster/partition": seller},
            run_config={"execution": {"config": {executor: {}}}},
        ) as result,
    ):
        run = instance.get_run_by_id(result.run_id)
        tags = run.tags if run else {}
        events = [e.event_type_value for e in result.all_events]
        return LaunchedRun(
            seller=seller,
            dagster_run_id=result.run_id,
            success=result.success,
            outcome=tags.get(TAG_OUTCOME),
            invsync_run_id=tags.get(TAG_RUN),
            message=tags.get(TAG_MESSAGE),
            attempts=1 + events.count("STEP_RESTARTED"),
            started=started,
            ended=time.time(),
            events=events,
        )


def materialize_sellers(
    sellers_file: Path,
    home: Path,
    sellers: Iterable[str],
    *,
    parallel: int | None = None,
    executor: str = "multiprocess",
) -> list[LaunchedRun]:
    """Run the ``invsync_sync`` job for each of ``sellers`` (their partitions are added
    first), ``parallel`` at a time (all at once by default), against the Dagster instance
    in ``home`` (a folder, made if missing), with ``executor`` (:data:`EXECUTORS`). Returns
    the runs in the order given; a seller whose run fails does not stop the others."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor {executor!r} is not one of {', '.join(EXECUTORS)}")
    ids = list(sellers)
    environ = dict(os.environ)  # what the runs read each seller's variables from
    home.mkdir(parents=True, exist_ok=True)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        known = set(instance.get_dynamic_partitions(PARTITIONS))
        instance.add_dynamic_partitions(PARTITIONS, [s for s in ids if s not in known])
    # forkserver: one clean process imports Dagster and invsync once and forks each run's
    # process from it (safe beside threads, unlike fork; cheaper than a spawn per run)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["pipeline.orchestration.launch"])
    with ProcessPoolExecutor(max_workers=parallel or len(ids), mp_context=context) as pool:
        futures = [
            pool.submit(_one, str(sellers_file.resolve()), str(home), s, executor, environ)
            for s in ids
        ]
        return [f.result() for f in futures]
