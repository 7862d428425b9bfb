"""A real S3-compatible store on loopback for tests: moto's server in a thread of the test
process, on 127.0.0.1 and a free port, with a fresh bucket per test. Not a test module.

tests/integration/conftest.py imports the ``s3_store`` fixture, so every test below
``tests/integration/`` asks for it by name; another folder imports it into its own
``conftest.py`` the same way (a fixture imported into a test module itself also works, but
ruff reads the test's parameter as a redefinition, F811)::

    # tests/orchestration/conftest.py
    from tests.integration.s3kit import s3_store  # noqa: F401

    # tests/orchestration/test_something.py
    from tests.integration.s3kit import S3Store

    def test_something(s3_store: S3Store) -> None:
        env = {**sandbox_env, **s3_store.env}       # what an invsync workspace needs
        toml = f'[history]\\nurl = "{s3_store.url("seller-1")}"\\n'
        ...
        assert "seller-1/exports/runs/runs.parquet" in s3_store.keys("seller-1")

``S3Store``: ``endpoint`` (``http://127.0.0.1:PORT``), ``bucket``, ``env`` (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ``AWS_REGION``), ``url(prefix)``
(``s3://bucket/prefix``), ``keys(prefix)`` (every object key under ``prefix``, sorted, with
the prefix), ``client()`` (a boto3 client for checks), and ``stop()`` / ``start()`` to take the
store away and bring it back on the same port with the same objects (an outage).

moto keeps its objects in the process, so each test gets a bucket of its own; under
pytest-xdist each worker runs its own server. The access keys are fixed test values, long
enough that invsync's redaction masks them (so a test can look for them in outputs).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

ACCESS_KEY_ID = "AKIAS3KITTESTKEY0001"
SECRET_ACCESS_KEY = "s3kit-secret-Zx9vQ2mL7pR4tW8yB1nC"
REGION = "us-east-1"


@dataclass
class S3Store:
    """One bucket on a running moto server (see the module docstring)."""

    endpoint: str
    bucket: str
    server: Any = field(repr=False)
    port: int = 0
    running: bool = True

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
        }

    def url(self, prefix: str = "history") -> str:
        return f"s3://{self.bucket}/{prefix}".rstrip("/")

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY, region_name=REGION,
        )  # fmt: skip

    def keys(self, prefix: str = "") -> list[str]:
        found: list[str] = []
        pages = self.client().get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.bucket, Prefix=prefix):
            found += [item["Key"] for item in page.get("Contents", [])]
        return sorted(found)

    def stop(self) -> None:
        """The store goes away (connections to its port are refused); its objects stay."""
        if self.running:
            self.server.stop()
            self.running = False

    def start(self) -> None:
        """The store comes back on the same port, with the objects it held."""
        from moto.server import ThreadedMotoServer

        if not self.running:
            self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
            self.server.start()
            self.running = True


@pytest.fixture
def s3_store() -> Iterator[S3Store]:
    """A moto S3 server on 127.0.0.1 and a new bucket in it, stopped after the test."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    store = S3Store(f"http://{host}:{port}", f"invsync-{uuid.uuid4().hex[:12]}", server, port)
    store.client().create_bucket(Bucket=store.bucket)
    try:
        yield store
    finally:
        store.stop()
