"""policy_memory node over real rclpy: every service, good and bad requests."""

from __future__ import annotations

import array

import numpy as np
import pytest
import torch
from rclpy.parameter import Parameter
from std_srvs.srv import Trigger

from memory_interfaces.srv import PolicyMemoryStep
from memory_node.ros.policy_memory_node import PolicyMemoryNode

DIM = 32


def make_node(ros, **params):
    overrides = [Parameter("dim", value=DIM), Parameter("capacity", value=4)]
    overrides += [Parameter(k, value=v) for k, v in params.items()]
    return ros.add(PolicyMemoryNode(context=ros.context, parameter_overrides=overrides))


def step_request(t, n=3, dim=DIM, write=True, seed=0, perceptual=None, cognitive=None):
    rng = np.random.default_rng(seed + t)
    req = PolicyMemoryStep.Request(timestep=t, num_tokens=n, dim=dim, write=write)
    p = rng.standard_normal(n * dim).astype(np.float32) if perceptual is None else perceptual
    c = rng.standard_normal(dim).astype(np.float32) if cognitive is None else cognitive
    req.perceptual = array.array("f", np.asarray(p, np.float32).tobytes())
    req.cognitive = array.array("f", np.asarray(c, np.float32).tobytes())
    return req


def test_step_fuses_writes_and_consolidates_at_capacity(ros):
    make_node(ros)
    sizes = []
    for t in range(6):
        res = ros.call(PolicyMemoryStep, "/policy_memory/step", step_request(t))
        assert res.success, res.message
        assert len(res.perceptual_fused) == 3 * DIM and len(res.cognitive_fused) == DIM
        assert np.all(np.isfinite(np.frombuffer(res.perceptual_fused, np.float32)))
        sizes.append(res.bank_size)
    assert sizes == [1, 2, 3, 4, 4, 4]
    res = ros.call(Trigger, "/policy_memory/reset", Trigger.Request())
    assert res.success
    res = ros.call(PolicyMemoryStep, "/policy_memory/step", step_request(0, write=False))
    assert res.success and res.bank_size == 0


def test_timestep_going_backwards_starts_a_new_episode(ros):
    make_node(ros)
    for t in (10, 11, 12):
        ros.call(PolicyMemoryStep, "/policy_memory/step", step_request(t))
    res = ros.call(PolicyMemoryStep, "/policy_memory/step", step_request(0))
    assert res.success and res.bank_size == 1


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        ({"perceptual": np.zeros(5, np.float32)}, "len(perceptual)"),
        ({"cognitive": np.zeros(DIM + 1, np.float32)}, "len(cognitive)"),
        ({"dim": DIM * 2}, "dim"),
        ({"n": 10**9, "perceptual": np.zeros(3, np.float32)}, "num_tokens"),
        ({"n": 0, "perceptual": np.zeros(0, np.float32)}, "num_tokens"),
        ({"perceptual": np.full(3 * DIM, np.nan, np.float32)}, ""),
    ],
    ids=["short-perceptual", "long-cognitive", "other-dim", "absurd-tokens", "zero-tokens", "nan"],
)
def test_bad_steps_are_refused_and_leave_the_bank_unchanged(ros, kwargs, reason):
    make_node(ros)
    ok = ros.call(PolicyMemoryStep, "/policy_memory/step", step_request(0))
    assert ok.success and ok.bank_size == 1
    bad = ros.call(PolicyMemoryStep, "/policy_memory/step", step_request(1, **kwargs))
    assert not bad.success and bad.message and reason in bad.message
    assert bad.bank_size == 1
    again = ros.call(PolicyMemoryStep, "/policy_memory/step", step_request(2, write=False))
    assert again.success and again.bank_size == 1


def test_inactive_node_answers_with_a_reason(ros):
    make_node(ros, autostart=False)
    res = ros.call(PolicyMemoryStep, "/policy_memory/step", step_request(0))
    assert not res.success and "not active" in res.message


def test_unavailable_device_falls_back_to_cpu_and_serves(ros, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a CPU-only robot
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    make_node(ros, device="cuda", dtype="bfloat16", num_threads=1)
    res = ros.call(PolicyMemoryStep, "/policy_memory/step", step_request(0))
    assert res.success, res.message
    res = ros.call(PolicyMemoryStep, "/policy_memory/step", step_request(1))
    assert res.success and res.bank_size == 2
    fused = np.frombuffer(res.perceptual_fused, np.float32)
    assert fused.shape == (3 * DIM,) and np.all(np.isfinite(fused))
