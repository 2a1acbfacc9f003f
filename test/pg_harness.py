"""A private PostgreSQL server for the fleet-memory tests, run by tools/postgres.sh."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """The test cluster: its URL, fresh databases, and stop/start for outage tests."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {
            **os.environ,
            "MEMORY_PG_DIR": str(folder),
            "MEMORY_PG_PORT": str(_free_port()),
        }
        self.url = ""
        self._databases = 0

    def run(self, command: str) -> str:
        """Run ``tools/postgres.sh command``; fail the test loudly when it fails."""
        done = subprocess.run(
            ["bash", str(REPO / "tools" / "postgres.sh"), command],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(
                f"tools/postgres.sh {command} failed (exit {done.returncode}); PostgreSQL is "
                f"installed by `make setup` (apt package postgresql):\n"
                f"{done.stdout}\n{done.stderr}"
            )
        return done.stdout.strip()

    def start(self) -> None:
        """Start the server (initdb on first use)."""
        self.run("start")
        self.url = self.run("url")

    def stop(self) -> None:
        """Stop the server."""
        self.run("stop")

    def new_database(self) -> str:
        """Create an empty database on the server and return its URL."""
        import psycopg

        self._databases += 1
        name = f"test_{os.getpid()}_{self._databases}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + "/" + name
