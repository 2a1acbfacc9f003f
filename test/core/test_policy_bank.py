"""Known-answer tests of the MemoryVLA-style policy memory bank (no ROS)."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from memory_node.core.config import flatten, unflatten
from memory_node.core.policy_bank import (
    CheckpointError,
    PerceptualCognitiveMemory,
    PolicyBankConfig,
    PolicyMemory,
    PolicyStepResult,
    StreamBank,
    adjacent_similarity,
    merge_most_similar_adjacent,
    save_checkpoint,
    timestep_encoding,
)
from memory_node.core.types import InvalidInput

NO_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available here")
DEVICES = ["cpu", pytest.param("cuda", marks=NO_CUDA)]


def small_config(**overrides: object) -> PolicyBankConfig:
    cfg = PolicyBankConfig(dim=8, capacity=3, num_heads=2, num_layers=2, ffn_dim=16, max_tokens=8)
    return dataclasses.replace(cfg, **overrides)


def tokens(rng: np.random.Generator, num_tokens: int = 4, dim: int = 8) -> tuple:
    p = rng.standard_normal((num_tokens, dim)).astype(np.float32)
    c = rng.standard_normal(dim).astype(np.float32)
    return p, c


def bank_arrays(mem: PolicyMemory) -> list[np.ndarray]:
    return list(mem.snapshot().values())


# ---------------------------------------------------------------- consolidation known answers


def test_merge_replaces_exactly_the_most_similar_adjacent_pair() -> None:
    # Entries 1 and 2 are nearly parallel; 0-1 and 2-3 are orthogonal/opposite.
    entries = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[0.1, 1.0]], [[-1.0, 0.0]]])[None]
    timesteps = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    (merged, merged_t), pair = merge_most_similar_adjacent(entries, [entries, timesteps])
    assert pair.tolist() == [1]
    expected = torch.tensor([[[1.0, 0.0]], [[0.05, 1.0]], [[-1.0, 0.0]]])[None]
    torch.testing.assert_close(merged, expected, rtol=0, atol=0)
    torch.testing.assert_close(merged_t, torch.tensor([[0.0, 1.5, 3.0]]), rtol=0, atol=0)


def test_merge_is_per_episode_in_a_batch() -> None:
    a = torch.tensor([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [-1.0, 0.0]])  # pair 0
    b = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [-1.0, 0.02]])  # pair 2
    entries = torch.stack([a, b]).unsqueeze(2)  # (2, 4, 1, 2)
    timesteps = torch.tensor([[0.0, 2.0, 4.0, 6.0], [10.0, 11.0, 12.0, 14.0]])
    (merged, merged_t), pair = merge_most_similar_adjacent(entries, [entries, timesteps])
    assert pair.tolist() == [0, 2]
    torch.testing.assert_close(merged_t, torch.tensor([[1.0, 4.0, 6.0], [10.0, 11.0, 13.0]]))
    torch.testing.assert_close(merged[0, 0, 0], torch.tensor([1.0, 0.005]))
    torch.testing.assert_close(merged[1, 2, 0], torch.tensor([-1.0, 0.01]))
    torch.testing.assert_close(merged[1, :2], entries[1, :2])


def test_adjacent_similarity_is_cosine_of_flattened_entries() -> None:
    entries = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, -1.0]]]])
    torch.testing.assert_close(adjacent_similarity(entries), torch.tensor([[0.0]]))


def test_bank_merges_raw_entries_and_averages_timesteps() -> None:
    """With raw storage the bank content is known exactly after a merge at capacity 3."""
    mem = PolicyMemory(small_config(store_fused=False, capacity=3))
    steps = [np.eye(4, 8, k=k, dtype=np.float32) for k in range(3)]
    near_copy = steps[1] + 0.01 * np.eye(4, 8, k=4, dtype=np.float32)
    cognitive = [np.eye(8, dtype=np.float32)[k] for k in (0, 5, 5, 2)]
    perceptual = [steps[0], steps[1], near_copy, steps[2]]
    for t, (p, c) in enumerate(zip(perceptual, cognitive, strict=True)):
        assert mem.step(t * 10, p, c, write=True).bank_size == min(t + 1, 3)
    bank = mem.snapshot()
    np.testing.assert_array_equal(bank["perceptual_timesteps"], [0.0, 15.0, 30.0])
    np.testing.assert_array_equal(bank["perceptual"][0], steps[0])
    np.testing.assert_allclose(bank["perceptual"][1], 0.5 * (steps[1] + near_copy))
    np.testing.assert_array_equal(bank["perceptual"][2], steps[2])
    np.testing.assert_array_equal(bank["cognitive_timesteps"], [0.0, 15.0, 30.0])
    np.testing.assert_array_equal(bank["cognitive"], np.stack(cognitive)[[0, 1, 3]])


def test_fifo_drops_the_oldest() -> None:
    mem = PolicyMemory(small_config(consolidation="fifo", capacity=3))
    rng = np.random.default_rng(0)
    for t in range(6):
        mem.step(t, *tokens(rng), write=True)
    np.testing.assert_array_equal(mem.snapshot()["perceptual_timesteps"], [3.0, 4.0, 5.0])
    np.testing.assert_array_equal(mem.snapshot()["cognitive_timesteps"], [3.0, 4.0, 5.0])


@pytest.mark.parametrize("consolidation", ["merge", "fifo"])
def test_bank_never_exceeds_capacity(consolidation: str) -> None:
    mem = PolicyMemory(small_config(consolidation=consolidation, capacity=4))
    rng = np.random.default_rng(1)
    sizes = [mem.step(t, *tokens(rng), write=True).bank_size for t in range(30)]
    assert sizes == [1, 2, 3] + [4] * 27
    bank = mem.snapshot()
    assert bank["perceptual"].shape == (4, 4, 8) and bank["cognitive"].shape == (4, 8)
    for key in ("perceptual_timesteps", "cognitive_timesteps"):
        assert np.all(np.diff(bank[key]) > 0), "entries stay in time order"


def test_read_only_step_does_not_write() -> None:
    mem = PolicyMemory(small_config())
    rng = np.random.default_rng(2)
    mem.step(0, *tokens(rng), write=True)
    before = bank_arrays(mem)
    assert mem.step(1, *tokens(rng), write=False).bank_size == 1
    for a, b in zip(before, bank_arrays(mem), strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- retrieval and gate


def test_empty_bank_passes_input_through() -> None:
    mem = PolicyMemory(small_config())
    p, c = tokens(np.random.default_rng(3))
    res = mem.step(0, p, c, write=False)
    assert isinstance(res, PolicyStepResult)
    np.testing.assert_array_equal(res.perceptual_fused, p)
    np.testing.assert_array_equal(res.cognitive_fused, c)
    assert res.bank_size == 0


@pytest.mark.parametrize("device", DEVICES)
def test_gate_returns_x_when_g_is_one(device: str) -> None:
    mem = PolicyMemory(small_config(device=device))
    with torch.no_grad():
        for stream in (mem.module.perceptual, mem.module.cognitive):
            stream.gate.weight.zero_()
            stream.gate.bias.fill_(1e4)  # sigmoid(1e4) == 1.0 in float32
    rng = np.random.default_rng(4)
    for t in range(5):
        p, c = tokens(rng)
        res = mem.step(t, p, c, write=True)
        np.testing.assert_array_equal(res.perceptual_fused, p)
        np.testing.assert_array_equal(res.cognitive_fused, c)
    assert mem.bank_size == 3


def test_gate_returns_memory_when_g_is_zero() -> None:
    mem = PolicyMemory(small_config())
    stream = mem.module.perceptual
    with torch.no_grad():
        stream.gate.weight.zero_()
        stream.gate.bias.fill_(-1e4)
    rng = np.random.default_rng(5)
    mem.step(0, *tokens(rng), write=True)
    p, c = tokens(rng)
    res = mem.step(1, p, c, write=False)
    bank = mem.snapshot()
    stored = StreamBank(
        torch.from_numpy(bank["perceptual"])[None],
        torch.from_numpy(bank["perceptual_timesteps"])[None],
        keys=[],
        values=[],
    )
    with torch.no_grad():
        expected = stream.retrieve(torch.from_numpy(p)[None], stored)[0]
    np.testing.assert_allclose(res.perceptual_fused, expected.numpy(), rtol=1e-6, atol=1e-6)
    assert not np.allclose(res.perceptual_fused, p)


def test_retrieval_depends_on_memory_and_timestep() -> None:
    cfg = small_config()
    rng = np.random.default_rng(6)
    first, second, query = tokens(rng), tokens(rng), tokens(rng)
    outs = []
    # With one entry the timestep term shifts every score equally; two entries expose it.
    for t0, t1 in ((0, 1), (0, 1), (0, 3)):
        mem = PolicyMemory(cfg)
        mem.step(t0, *first, write=True)
        mem.step(t1, *second, write=True)
        outs.append(mem.step(5, *query, write=False).perceptual_fused)
    np.testing.assert_array_equal(outs[0], outs[1])  # seeded: deterministic
    assert not np.allclose(outs[0], outs[2], atol=1e-5)  # the timestep encoding matters
    other = PolicyMemory(cfg)
    other.step(0, *query, write=True)
    other.step(1, *second, write=True)
    assert not np.allclose(outs[0], other.step(5, *query, write=False).perceptual_fused)


def test_timestep_encoding_known_values() -> None:
    enc = timestep_encoding(torch.tensor([0.0, 1.0]), dim=4, base=10000.0)
    # frequencies 1 and 10000**-0.5 = 0.01
    expected = torch.tensor(
        [[0.0, 0.0, 1.0, 1.0], [np.sin(1.0), np.sin(0.01), np.cos(1.0), np.cos(0.01)]]
    )
    torch.testing.assert_close(enc, expected.float())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("consolidation", ["merge", "fifo"])
def test_in_place_cached_and_recomputed_paths_agree(device: str, consolidation: str) -> None:
    # The node's in-place banks, the batched module with cached projections and the batched
    # module recomputing every projection agree through many consolidations.
    cfg = small_config(device=device, capacity=4, consolidation=consolidation)
    in_place, cached, plain = PolicyMemory(cfg), PolicyMemory(cfg), PolicyMemory(cfg)
    cached.in_place = plain.in_place = False
    plain.module.cache_projections = False
    rng = np.random.default_rng(7)
    for t in range(20):
        p, c = tokens(rng)
        write = t % 5 != 3
        ref = plain.step(t, p, c, write)
        for mem in (in_place, cached):
            res = mem.step(t, p, c, write)
            np.testing.assert_allclose(res.perceptual_fused, ref.perceptual_fused, atol=1e-5)
            np.testing.assert_allclose(res.cognitive_fused, ref.cognitive_fused, atol=1e-5)
            assert res.bank_size == ref.bank_size
    for key, value in plain.snapshot().items():
        np.testing.assert_allclose(in_place.snapshot()[key], value, atol=1e-5)
        np.testing.assert_allclose(cached.snapshot()[key], value, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("write", [True, False])
def test_a_step_projects_only_its_new_entry(device: str, write: bool) -> None:
    # Stored entries' keys/values are cached when written: a step at full capacity (with a
    # merge) projects one (N, D) entry per layer and stream when it writes, nothing when not.
    mem = PolicyMemory(small_config(device=device, capacity=3))
    rng = np.random.default_rng(17)
    for t in range(5):
        mem.step(t, *tokens(rng), write=True)
    projected: list[tuple[int, ...]] = []
    hooks = [
        linear.register_forward_hook(lambda _m, args, _o: projected.append(tuple(args[0].shape)))
        for stream in (mem.module.perceptual, mem.module.cognitive)
        for layer in stream.retrieval_layers
        for linear in (layer.key, layer.value)
    ]
    try:
        assert mem.step(5, *tokens(rng), write=write).bank_size == 3
    finally:
        for hook in hooks:
            hook.remove()
    expected = [(4, 8)] * 4 + [(1, 8)] * 4 if write else []
    assert sorted(projected, reverse=True) == expected


@pytest.mark.parametrize("device", DEVICES)
def test_batched_module_equals_single_episodes(device: str) -> None:
    cfg = small_config(device=device, capacity=3)
    torch.manual_seed(0)
    module = PerceptualCognitiveMemory(cfg).to(device).eval()
    rng = np.random.default_rng(8)
    p = torch.from_numpy(rng.standard_normal((7, 3, 4, 8)).astype(np.float32)).to(device)
    c = torch.from_numpy(rng.standard_normal((7, 3, 8)).astype(np.float32)).to(device)
    with torch.no_grad():
        state = None
        batched = []
        for t in range(7):
            fp, fc, state = module(p[t], c[t], torch.full((3,), float(t)), state)
            batched.append((fp, fc))
        for b in range(3):
            state = None
            for t in range(7):
                fp, fc, state = module(p[t, b : b + 1], c[t, b : b + 1], torch.tensor([t]), state)
                torch.testing.assert_close(fp[0], batched[t][0][b], rtol=1e-4, atol=1e-5)
                torch.testing.assert_close(fc[0], batched[t][1][b], rtol=1e-4, atol=1e-5)


def test_gradients_flow_through_time() -> None:
    module = PerceptualCognitiveMemory(small_config())
    p = torch.randn(3, 2, 4, 8, requires_grad=True)
    c = torch.randn(3, 2, 8)
    state = None
    for t in range(3):
        fp, fc, state = module(p[t], c[t], torch.full((2,), float(t)), state)
    (fp.square().sum() + fc.square().sum()).backward()
    assert p.grad is not None and p.grad[0].abs().sum() > 0, "step 0 reaches the last output"
    gate_grad = module.perceptual.gate.weight.grad
    assert gate_grad is not None and gate_grad.abs().sum() > 0


def test_default_config_runs_at_paper_size() -> None:
    mem = PolicyMemory(PolicyBankConfig())
    rng = np.random.default_rng(9)
    for t in range(3):
        res = mem.step(t, *tokens(rng, 256, 512), write=True)
    assert res.perceptual_fused.shape == (256, 512) and res.perceptual_fused.dtype == np.float32
    assert res.cognitive_fused.shape == (512,) and res.cognitive_fused.dtype == np.float32
    assert np.isfinite(res.perceptual_fused).all()


# ---------------------------------------------------------------- bad input and episodes


def bad_inputs() -> list:
    rng = np.random.default_rng(10)
    p, c = tokens(rng)
    nan_p = p.copy()
    nan_p[1, 2] = np.nan
    inf_c = c.copy()
    inf_c[0] = np.inf
    return [
        pytest.param(3, p[:, :6], c, "dim", id="perceptual-dim"),
        pytest.param(3, p, c[:6], "dim", id="cognitive-dim"),
        pytest.param(3, p[:, :6], c[:6], "dim", id="dim-changed-mid-episode"),
        pytest.param(3, p.reshape(-1), c, "dimension", id="flat-perceptual"),
        pytest.param(3, nan_p, c, "NaN", id="nan-tokens"),
        pytest.param(3, p, inf_c, "NaN or inf", id="inf-cognitive"),
        pytest.param(3, np.zeros((100000, 8), np.float32), c, "max_tokens", id="absurd-tokens"),
        pytest.param(3, np.zeros((0, 8), np.float32), c, "num_tokens", id="zero-tokens"),
        pytest.param(3, p[:3], c, "differs", id="num-tokens-changed"),
        pytest.param(3, p.astype(np.int32), c, "floating", id="int-dtype"),
        pytest.param(3, p.tolist(), c, "numpy", id="list"),
        pytest.param(-1, p, c, "timestep", id="negative-timestep"),
        pytest.param(2**40, p, c, "timestep", id="huge-timestep"),
        pytest.param(3.5, p, c, "integer", id="float-timestep"),
        pytest.param(3, np.full((4, 8), 1e300), c, "NaN or inf", id="overflows-float32"),
    ]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("timestep", "perceptual", "cognitive", "reason"), bad_inputs())
def test_bad_input_raises_and_leaves_bank_unchanged(
    timestep: object, perceptual: object, cognitive: object, reason: str, device: str
) -> None:
    mem = PolicyMemory(small_config(device=device))
    rng = np.random.default_rng(11)
    for t in range(2):
        mem.step(t, *tokens(rng), write=True)
    before = bank_arrays(mem)
    with pytest.raises(InvalidInput, match=reason):
        mem.step(timestep, perceptual, cognitive, write=True)  # type: ignore[arg-type]
    assert isinstance(InvalidInput("x"), ValueError)
    assert mem.bank_size == 2
    for a, b in zip(before, bank_arrays(mem), strict=True):
        np.testing.assert_array_equal(a, b)
    # The episode goes on as if the bad request never came.
    follow = tokens(rng)
    reference = PolicyMemory(small_config(device=device))
    rng_ref = np.random.default_rng(11)
    for t in range(2):
        reference.step(t, *tokens(rng_ref), write=True)
    np.testing.assert_array_equal(
        mem.step(2, *follow, True).perceptual_fused,
        reference.step(2, *follow, True).perceptual_fused,
    )


def test_timestep_going_back_resets_episode(caplog: pytest.LogCaptureFixture) -> None:
    mem = PolicyMemory(small_config())
    rng = np.random.default_rng(12)
    for t in range(5):
        assert not mem.step(t, *tokens(rng), write=True).episode_reset
    p, c = tokens(rng, num_tokens=6)  # a new episode may use another token count
    with caplog.at_level(logging.INFO, logger="memory_node.core.policy_bank"):
        res = mem.step(0, p, c, write=True)
    assert res.episode_reset and res.bank_size == 1
    assert "resetting" in caplog.text
    np.testing.assert_array_equal(res.perceptual_fused, p)  # empty bank before this step


def test_same_timestep_again_is_not_a_reset() -> None:
    mem = PolicyMemory(small_config())
    rng = np.random.default_rng(13)
    mem.step(4, *tokens(rng), write=True)
    assert mem.step(4, *tokens(rng), write=True).bank_size == 2


def test_reset_empties_the_bank() -> None:
    mem = PolicyMemory(small_config())
    rng = np.random.default_rng(14)
    for t in range(3):
        mem.step(t, *tokens(rng), write=True)
    mem.reset()
    assert mem.bank_size == 0
    p, c = tokens(rng)
    np.testing.assert_array_equal(mem.step(7, p, c, True).perceptual_fused, p)


# ---------------------------------------------------------------- config and checkpoints


def test_config_is_flat_parameters_with_choices() -> None:
    specs = {s.name: s for s in flatten(PolicyBankConfig())}
    assert {"dim", "capacity", "num_heads", "num_layers", "max_tokens", "consolidation"} <= set(
        specs
    )
    assert {"checkpoint_path", "device", "seed"} <= set(specs)
    assert specs["dim"].default == 512 and specs["capacity"].default == 16
    assert specs["num_heads"].default == 4 and specs["num_layers"].default == 2
    assert specs["consolidation"].choices == ("merge", "fifo")
    for spec in specs.values():
        assert isinstance(spec.default, (bool, int, float, str)), spec.name
        assert spec.description
    with pytest.raises(ValueError, match="consolidation"):
        unflatten(PolicyBankConfig, {"consolidation": "lifo"})


def test_inconsistent_config_is_refused() -> None:
    with pytest.raises(ValueError, match="num_heads"):
        PolicyMemory(small_config(dim=10, num_heads=4))
    with pytest.raises(ValueError, match="dtype"):
        PolicyMemory(small_config(dtype="float64"))


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("device", ["cuda", "cuda:7", "xpu", "no-such-device"])
def test_unavailable_device_falls_back_to_cpu_with_a_warning(
    device: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    restore_threads: None,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a CPU-only robot
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with caplog.at_level(logging.WARNING, logger="memory_node.core.policy_bank"):
        mem = PolicyMemory(small_config(device=device))
    assert mem.device == torch.device("cpu")
    assert "using the CPU" in caplog.text and device in caplog.text
    assert next(mem.module.parameters()).device == torch.device("cpu")
    rng = np.random.default_rng(15)
    assert mem.step(0, *tokens(rng), write=True).bank_size == 1


def test_auto_device_and_default_threads(restore_threads: None) -> None:
    mem = PolicyMemory(small_config())
    assert PolicyBankConfig().device == "auto" and PolicyBankConfig().num_threads == 0
    assert mem.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    cores = len(os.sched_getaffinity(0))
    assert mem.num_threads == cores and torch.get_num_threads() == cores
    assert PolicyMemory(small_config(num_threads=1)).num_threads == torch.get_num_threads() == 1


def test_half_precision_on_cpu_falls_back_to_float32(
    caplog: pytest.LogCaptureFixture, restore_threads: None
) -> None:
    with caplog.at_level(logging.WARNING, logger="memory_node.core.policy_bank"):
        mem = PolicyMemory(small_config(device="cpu", dtype="bfloat16"))
    assert mem.dtype == torch.float32 and "float32" in caplog.text
    assert next(mem.module.parameters()).dtype == torch.float32


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@NO_CUDA
def test_half_precision_on_cuda_stays_close_to_float32(dtype: str) -> None:
    full = PolicyMemory(small_config(device="cuda"))
    half = PolicyMemory(small_config(device="cuda", dtype=dtype))
    assert half.dtype == getattr(torch, dtype)
    rng = np.random.default_rng(16)
    for t in range(8):
        p, c = tokens(rng)
        a, b = full.step(t, p, c, True), half.step(t, p, c, True)
        assert b.perceptual_fused.dtype == np.float32
        np.testing.assert_allclose(b.perceptual_fused, a.perceptual_fused, atol=0.1, rtol=0.05)


def test_seeded_init_is_deterministic_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a = PolicyMemory(small_config(seed=5))
    assert torch.equal(torch.rand(1), expected)
    b = PolicyMemory(small_config(seed=5))
    c = PolicyMemory(small_config(seed=6))
    wa, wb, wc = (m.module.perceptual.gate.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def run_episode(mem: PolicyMemory, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for t in range(6):
        res = mem.step(t, *tokens(rng), write=True)
        out += [res.perceptual_fused, res.cognitive_fused]
    return out


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    trained = PolicyMemory(small_config(seed=1))
    path = tmp_path / "weights" / "bank.pt"
    save_checkpoint(trained.module, path)
    loaded = PolicyMemory(small_config(seed=2, checkpoint_path=str(path)))
    fresh = PolicyMemory(small_config(seed=2))
    ref = run_episode(trained, 20)
    for a, b in zip(ref, run_episode(loaded, 20), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(ref[2], run_episode(fresh, 20)[2])
    assert [p.name for p in path.parent.iterdir()] == ["bank.pt"], "no temporary file left"


def test_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        PolicyMemory(small_config(checkpoint_path=str(tmp_path / "nope.pt")))


def test_corrupt_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bank.pt"
    path.write_bytes(b"definitely not a torch file")
    with pytest.raises(CheckpointError, match="unreadable"):
        PolicyMemory(small_config(checkpoint_path=str(path)))
    torch.save({"something": 1}, path)
    with pytest.raises(CheckpointError, match="not a policy bank checkpoint"):
        PolicyMemory(small_config(checkpoint_path=str(path)))


def test_checkpoint_of_another_architecture_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bank.pt"
    save_checkpoint(PolicyMemory(small_config()).module, path)
    with pytest.raises(CheckpointError, match="architecture"):
        PolicyMemory(small_config(num_layers=3, checkpoint_path=str(path)))
