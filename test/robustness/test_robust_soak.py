"""CI-sized versions of the soak checks (``make soak`` runs them full size).

memory_bringup over DDS, killed during ``~/save``, and under ingest plus four client processes.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import sys
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="rclpy (ROS 2 Jazzy wheels) is not installed")

REPO = Path(__file__).resolve().parents[2]


def soak_module():
    """Import tools/soak.py as ``soak`` (its client processes re-import it by that name)."""
    sys.path.insert(0, str(REPO / "tools"))
    return importlib.import_module("soak")


def options(**kw: object) -> argparse.Namespace:
    base = {"domain": random.Random(os.getpid()).randint(201, 230), "quick": True}
    return argparse.Namespace(**{**base, **kw})


def test_sigkill_during_save_never_loses_the_memory_file(tmp_path, monkeypatch) -> None:
    soak = soak_module()
    monkeypatch.setattr(soak, "OUT", tmp_path)
    assert soak.check_kill(options(kills=2))
    figures = json.loads((tmp_path / "kill.json").read_text())
    assert figures["kills"] == 2 and figures["lost_or_corrupt"] == 0


def test_ingest_with_four_concurrent_clients_answers_every_call(tmp_path, monkeypatch) -> None:
    soak = soak_module()
    monkeypatch.setattr(soak, "OUT", tmp_path)
    # a generous watchdog: CI machines are shared; `make soak` uses 10 s
    monkeypatch.setattr(soak, "WATCHDOG_S", 60.0)
    assert soak.check_concurrency(options(minutes=0.4, rate=12.0))
    figures = json.loads((tmp_path / "concurrency.json").read_text())
    assert figures["calls"] > 0 and figures["unanswered"] == 0 and figures["inconsistent"] == 0
