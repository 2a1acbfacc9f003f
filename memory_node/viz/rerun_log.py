"""The memory as a Rerun recording: camera images, fused objects, relations, change events.

Entities (map frame, metres; timelines ``time`` = the frames' clock in seconds and ``frame``):

* ``world/camera``: the camera pose (Transform3D) and intrinsics (Pinhole); its ``image`` child
  holds the RGB image, JPEG-compressed, every ``image_every``-th frame;
* ``world/objects/present`` and ``world/objects/absent``: the fused objects as 3D boxes labelled
  ``label [id]`` (and the state), present ones in a colour per label, absent ones grey;
* ``world/relations``: one line per relation from the subject's centre to the object's,
  labelled with the predicate;
* ``world/zones``: zone boxes labelled with the room name;
* ``changes``: every change event as a text line at its stamp (APPEARED, MOVED, ...), and
  ``world/changes`` a point where it happened.

Output goes to an ``.rrd`` file (written under a temporary name and moved into place by
:meth:`RerunLogger.close`, so an aborted run leaves no half file) or live to a viewer
(``connect``: a gRPC URL such as ``rerun+http://127.0.0.1:9876/proxy``, or ``spawn``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memory_node.core.pose_buffer import matrix_to_quaternion
from memory_node.core.types import ChangeEvent, ChangeKind, Relation, SceneObject, Zone

ABSENT_COLOUR = (150, 150, 150, 110)
EVENT_COLOURS = {
    ChangeKind.APPEARED: (60, 200, 80, 255),
    ChangeKind.MOVED: (60, 140, 255, 255),
    ChangeKind.DISAPPEARED: (230, 70, 60, 255),
    ChangeKind.STATE_CHANGED: (240, 190, 40, 255),
}


def label_colour(label: str) -> tuple[int, int, int, int]:
    """Return a stable, saturated RGBA colour for ``label``."""
    h = hashlib.sha1(label.encode()).digest()
    rgb = np.array([h[0], h[1], h[2]], np.float64)
    rgb = 70 + 185 * (rgb - rgb.min()) / max(float(np.ptp(rgb)), 1.0)
    return (int(rgb[0]), int(rgb[1]), int(rgb[2]), 255)


def describe(event: ChangeEvent) -> str:
    """One line for a change event, e.g. ``MOVED mug [obj_000051] (1.00, 2.00, 0.80) -> ...``."""
    kind = ChangeKind(event.kind)
    name = f"{kind.name} {event.label or '?'} [{event.object_id}]"
    old = "({:.2f}, {:.2f}, {:.2f})".format(*np.asarray(event.old_position, float))
    new = "({:.2f}, {:.2f}, {:.2f})".format(*np.asarray(event.new_position, float))
    if kind == ChangeKind.MOVED:
        return f"{name} {old} -> {new}"
    if kind == ChangeKind.STATE_CHANGED:
        return f"{name} {event.old_state or '?'} -> {event.new_state or '?'} at {new}"
    return f"{name} at {new}"


class RerunLogger:
    """Writes the memory to a Rerun recording; see the module docstring."""

    def __init__(
        self,
        save_path: str = "",
        connect: str = "",
        spawn: bool = False,
        image_every: int = 1,
        jpeg_quality: int = 75,
        application_id: str = "memory_node",
    ) -> None:
        """Open the recording.

        Args:
            save_path: write an .rrd file here (at :meth:`close`); "" = no file.
            connect: stream live to the viewer at this gRPC URL; "" = no.
            spawn: start a viewer and stream to it.
            image_every: log every n-th camera image (1 = every one).
            jpeg_quality: JPEG quality of the logged images.
            application_id: the recording's application id.
        """
        import rerun as rr

        if not (save_path or connect or spawn):
            raise ValueError("RerunLogger needs a save_path, a connect URL or spawn")
        self.rr = rr
        self.rec = rr.RecordingStream(application_id)
        self.save_path = save_path
        self.image_every = max(1, int(image_every))
        self.jpeg_quality = int(jpeg_quality)
        self._tmp = ""
        sinks: list[Any] = []
        if save_path:
            target = Path(save_path)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, self._tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            os.close(fd)
            sinks.append(rr.FileSink(self._tmp))
        if connect:
            sinks.append(rr.GrpcSink(connect))
        if spawn:
            self.rec.spawn(connect=False)
            sinks.append(rr.GrpcSink())
        self.rec.set_sinks(*sinks)
        self.rec.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
        self.frames = 0
        self.events = 0

    def _time(self, stamp: float, frame: int | None = None) -> None:
        self.rec.set_time("time", duration=float(stamp))
        if frame is not None:
            self.rec.set_time("frame", sequence=int(frame))

    def log_camera(
        self,
        stamp: float,
        rgb: np.ndarray | None,
        K: np.ndarray | None,
        map_T_camera: np.ndarray | None,
    ) -> None:
        """Log the camera pose and intrinsics, and the image every ``image_every`` frames.

        Args:
            stamp: seconds.
            rgb: (H, W, 3) uint8 image, or None.
            K: (3, 3) intrinsics, or None (not known yet).
            map_T_camera: (4, 4) pose of the optical frame in the map, or None.
        """
        rr = self.rr
        self._time(stamp, self.frames)
        if map_T_camera is not None:
            T = np.asarray(map_T_camera, np.float64)
            q = matrix_to_quaternion(T[:3, :3])
            self.rec.log("world/camera", rr.Transform3D(translation=T[:3, 3], quaternion=q))
        if rgb is not None and self.frames % self.image_every == 0:
            h, w = rgb.shape[:2]
            if K is not None:
                pinhole = rr.Pinhole(image_from_camera=np.asarray(K, float), resolution=[w, h])
                self.rec.log("world/camera/image", pinhole)
            image = rr.Image(np.ascontiguousarray(rgb, np.uint8), color_model="RGB")
            self.rec.log("world/camera/image", image.compress(jpeg_quality=self.jpeg_quality))
        self.frames += 1

    def log_graph(
        self,
        stamp: float,
        objects: Sequence[SceneObject],
        relations: Sequence[Relation],
        zones: Sequence[Zone],
    ) -> None:
        """Log the objects (present/absent boxes), relation lines and zones at ``stamp``."""
        rr = self.rr
        self._time(stamp)
        for present in (True, False):
            chosen = [o for o in objects if bool(o.present) == present]
            path = "world/objects/" + ("present" if present else "absent")
            if not chosen:
                self.rec.log(path, rr.Clear(recursive=False))
                continue
            labels = [
                f"{o.label or '?'} [{o.id}]" + (f" ({o.state})" if o.state else "") for o in chosen
            ]
            colours = [label_colour(o.label) if present else ABSENT_COLOUR for o in chosen]
            self.rec.log(
                path,
                rr.Boxes3D(
                    centers=np.array([o.center for o in chosen], np.float64),
                    half_sizes=0.5 * np.array([o.size for o in chosen], np.float64),
                    labels=labels,
                    colors=colours,
                ),
            )
        centre = {o.id: np.asarray(o.center, np.float64) for o in objects}
        lines = [r for r in relations if r.subject_id in centre and r.object_id in centre]
        if lines:
            self.rec.log(
                "world/relations",
                rr.LineStrips3D(
                    [[centre[r.subject_id], centre[r.object_id]] for r in lines],
                    labels=[r.predicate for r in lines],
                    colors=[(255, 255, 255, 160)] * len(lines),
                ),
            )
        else:
            self.rec.log("world/relations", rr.Clear(recursive=False))
        if zones:
            self.rec.log(
                "world/zones",
                rr.Boxes3D(
                    centers=np.array([z.center for z in zones], np.float64),
                    half_sizes=0.5 * np.array([z.size for z in zones], np.float64),
                    labels=[f"{z.label or 'zone'} [{z.id}]" for z in zones],
                    colors=[(255, 220, 120, 60)] * len(zones),
                ),
            )
        else:
            self.rec.log("world/zones", rr.Clear(recursive=False))

    def log_changes(self, events: Sequence[ChangeEvent]) -> None:
        """Log each change event on the timeline at its own stamp."""
        rr = self.rr
        for event in events:
            self._time(event.stamp)
            colour = EVENT_COLOURS[ChangeKind(event.kind)]
            self.rec.log("changes", rr.TextLog(describe(event), level="INFO", color=colour))
            self.rec.log(
                "world/changes",
                rr.Points3D(
                    [np.asarray(event.new_position, np.float64)],
                    labels=[ChangeKind(event.kind).name],
                    colors=[colour],
                    radii=[0.08],
                ),
            )
            self.events += 1

    def close(self, keep: bool = True) -> None:
        """Flush; move the .rrd file into place (``keep``) or delete it."""
        self.rec.flush()
        self.rec.disconnect()
        if self._tmp:
            if keep:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(self._tmp, 0o666 & ~umask)  # mkstemp made it private
                os.replace(self._tmp, self.save_path)
            elif os.path.exists(self._tmp):
                os.unlink(self._tmp)
            self._tmp = ""
