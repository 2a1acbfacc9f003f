"""Frames of a generated change episode, rendered or read back from a disk cache.

Rendering is most of the cost of ``bench/bench_changes.py`` on a loaded machine, and the frames do
not depend on the memory: a cache lets the memory be re-run on the same frames (tuning on the
training seeds, the final held-out run). The cache key holds the episode (path, events, scene),
the simulator configuration, the resolution and a probe of the simulator's behaviour: the first
frame, a frame of the scene after every change and the ground truth of that short run. A
simulator that renders or records differently therefore renders again, while a refactoring that
changes nothing it produces keeps the cache. Frames are stored uncompressed and exact (float32
depth, the instance ids, poses and scores as JSON floats): a cached run gives the same figures
as a rendered one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from memory_node.core.config import flatten
from memory_node.core.types import Frame
from memory_sim.change_episodes import ChangeEpisode, episode_to_dict
from memory_sim.episode import EpisodeRunner
from memory_sim.scene import scene_to_dict


def _probe(ce: ChangeEpisode, width: int, height: int) -> str:
    """Hash of what the simulator makes of the episode: two frames and the ground truth."""
    h = hashlib.sha1()
    config = ce.sim_config(width, height)
    with EpisodeRunner(ce.episode, config, scene=ce.scene) as runner:
        end = runner.trajectory.duration
        steps = [runner.sim.observe(runner.trajectory.pose_at(runner.sim.dt), runner.sim.dt)]
        runner.apply_events_until(end)
        steps.append(runner.sim.observe(runner.trajectory.pose_at(end), end))
        for step in steps:
            f = step.frame
            for array in (f.rgb, f.depth, f.instance, f.K, f.map_T_camera):
                h.update(np.ascontiguousarray(array).tobytes())
            h.update(repr(sorted((f.instance_labels or {}).items())).encode())
            h.update(repr(sorted((f.instance_states or {}).items())).encode())
        truth = runner.ground_truth()
    h.update(json.dumps(truth, sort_keys=True, default=_json_default).encode())
    return h.hexdigest()[:12]


def cache_key(ce: ChangeEpisode, width: int, height: int) -> str:
    """Return the cache folder name of an episode rendered at ``width`` x ``height``."""
    doc = {
        "episode": episode_to_dict(ce.episode, "scene.json"),
        "scene": scene_to_dict(ce.scene),
        "sim": {s.name: s.default for s in flatten(ce.sim_config(width, height))},
        "drop": ce.style.drop_prob,
        "probe": _probe(ce, width, height),
    }
    digest = hashlib.sha1(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
    return f"{ce.name}_{width}x{height}_{digest[:12]}"


class EpisodeFrames:
    """The frames the memory is given in one episode (dropped frames left out), in order.

    Iterate once; afterwards :attr:`ground_truth` holds the simulator's ground truth (frame
    truth of the delivered frames only). With ``cache_dir``, frames come from the cache when it
    has the episode and are written to it otherwise.
    """

    def __init__(self, ce: ChangeEpisode, width: int, height: int, cache_dir: str = "") -> None:
        self.ce = ce
        self.width, self.height = width, height
        self.folder = Path(cache_dir) / cache_key(ce, width, height) if cache_dir else None
        self.from_cache = self.folder is not None and (self.folder / "meta.json").is_file()
        self.ground_truth: dict[str, Any] = {}
        self.frames_total = 0
        self.render_s = 0.0

    def __iter__(self) -> Iterator[Frame]:
        """Yield the delivered frames."""
        if self.from_cache:
            yield from self._read()
        else:
            yield from self._render()

    def _render(self) -> Iterator[Frame]:
        runner = EpisodeRunner(
            self.ce.episode, self.ce.sim_config(self.width, self.height), scene=self.ce.scene
        )
        self.frames_total = runner.frame_count
        dropped = self.ce.dropped_frames(runner.frame_count)
        kept: list[Frame] = []
        with runner:
            for i in range(runner.frame_count):
                if dropped[i]:
                    runner.skip()
                    continue
                t0 = time.monotonic()
                frame = runner.step().frame
                self.render_s += time.monotonic() - t0
                if self.folder is not None:
                    kept.append(frame)
                yield frame
            self.ground_truth = runner.ground_truth()
        if self.folder is not None:
            self._write(kept)

    def _write(self, frames: list[Frame]) -> None:
        assert self.folder is not None
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.folder.parent, prefix=".tmp_"))
        try:
            np.save(tmp / "rgb.npy", np.stack([f.rgb for f in frames]))
            np.save(tmp / "depth.npy", np.stack([f.depth for f in frames]))
            np.save(tmp / "instance.npy", np.stack([np.asarray(f.instance) for f in frames]))
            meta = {
                "frames_total": self.frames_total,
                "frames": [
                    {
                        "stamp": f.stamp,
                        "K": np.asarray(f.K).tolist(),
                        "pose": np.asarray(f.map_T_camera).tolist(),
                        "labels": [
                            [int(k), v[0], v[1]] for k, v in (f.instance_labels or {}).items()
                        ],
                        "states": [[int(k), v] for k, v in (f.instance_states or {}).items()],
                    }
                    for f in frames
                ],
                "ground_truth": self.ground_truth,
            }
            (tmp / "meta.json").write_text(json.dumps(meta, default=_json_default))
            if not self.folder.exists():  # another run may have written it meanwhile
                os.replace(tmp, self.folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _read(self) -> Iterator[Frame]:
        assert self.folder is not None
        meta = json.loads((self.folder / "meta.json").read_text())
        self.frames_total = int(meta["frames_total"])
        self.ground_truth = meta["ground_truth"]
        rgb = np.load(self.folder / "rgb.npy", mmap_mode="r")
        depth = np.load(self.folder / "depth.npy", mmap_mode="r")
        instance = np.load(self.folder / "instance.npy", mmap_mode="r")
        for i, m in enumerate(meta["frames"]):
            yield Frame(
                stamp=float(m["stamp"]),
                rgb=np.array(rgb[i]),
                depth=np.array(depth[i]),
                K=np.asarray(m["K"], dtype=np.float64),
                map_T_camera=np.asarray(m["pose"], dtype=np.float64),
                instance=np.array(instance[i]),
                instance_labels={int(k): (label, float(s)) for k, label, s in m["labels"]},
                instance_states={int(k): state for k, state in m["states"]},
            )


def _json_default(x: Any) -> Any:
    """JSON for numpy values."""
    if isinstance(x, np.generic):
        return x.item()
    return np.asarray(x).tolist()
