"""The frame cache of bench_changes gives back exactly the frames and truth it rendered."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.episode_frames import EpisodeFrames, cache_key
from memory_sim.change_episodes import make_change_episode


def test_cached_frames_equal_rendered_frames(tmp_path: Path) -> None:
    ce = make_change_episode(4, "drop30", house="procedural")  # 30 % of frames dropped
    rendered = EpisodeFrames(ce, 32, 24, str(tmp_path))
    assert not rendered.from_cache
    first = list(rendered)
    assert 0 < len(first) < rendered.frames_total  # dropped frames are not delivered
    cached = EpisodeFrames(ce, 32, 24, str(tmp_path))
    assert cached.from_cache
    again = list(cached)
    assert len(again) == len(first)
    for a, b in zip(first, again, strict=True):
        assert a.stamp == b.stamp
        for name in ("rgb", "depth", "instance", "K", "map_T_camera"):
            x, y = getattr(a, name), getattr(b, name)
            assert x.dtype == y.dtype and np.array_equal(x, y), name
        assert a.instance_labels == b.instance_labels
        assert a.instance_states == b.instance_states
    assert cached.ground_truth["changes"] == rendered.ground_truth["changes"]
    assert len(cached.ground_truth["frames"]) == len(first)
    # another resolution or another episode is another entry
    assert cache_key(ce, 64, 48) != cache_key(ce, 32, 24)
    assert cache_key(make_change_episode(4, "smooth"), 32, 24) != cache_key(ce, 32, 24)
