"""Test-wide settings: an isolated ROS domain per run, offline model hubs, a PostgreSQL server."""

import os
import random
import shutil

import pytest
from pg_harness import REPO, PostgresServer

# Each pytest run gets its own DDS domain so parallel runs on one machine never cross-talk.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def postgres_server():
    """Start a PostgreSQL server of our own; fail loudly when PostgreSQL is not installed."""
    folder = REPO / "output" / f"pg_test_{os.getpid()}"
    server = PostgresServer(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
