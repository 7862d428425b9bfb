"""The Dagster code location: ``dagster dev -m pipeline.orchestration.definitions``.

Reads ``$INVSYNC_SELLERS``, else ``./sellers.toml``, else serves the sandbox demo sellers under
``./data/sellers`` (:func:`pipeline.orchestration.sellers.find_registry`); the definitions
themselves are built in :mod:`pipeline.orchestration.assets`. docs/orchestration.md says how
to run and deploy it.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from pipeline.orchestration.assets import JOB, build
from pipeline.orchestration.sellers import find_registry


def definitions() -> dg.Definitions:
    return build(find_registry(os.environ, Path.cwd()))


def sync_job() -> dg.JobDefinition:
    """The sync job, rebuilt from the environment: what ``dg.reconstructable`` hands a
    multiprocess executor's step processes (tests and the bench)."""
    return definitions().resolve_job_def(JOB)


defs = definitions()
