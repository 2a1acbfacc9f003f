"""Free-space memory: where the camera has seen *through*, and when.

A change detector must tell an object that *appeared* (it stands where the robot had seen free
space before) from one merely *seen for the first time* (the robot had not looked there, or
only at its other side). Khronos makes the same distinction with free-space reasoning. Here the
evidence is kept as *keyframes*: small depth images, min-pooled so that a block reads its
nearest valid reading, with the count of readings each block lacks, their poses and stamps,
taken when the camera has moved or turned enough. A point was seen free before time t when
some keyframe older than t shows it in view, in range, and with the reading clearly beyond it
(the ray went through it), in a block that lacks too few readings to have hidden the object
asked about (``max_missing_share``: had it stood there, some of its pixels would have read it).

Per frame this costs one pooling of the depth image; a question (asked only when an object is
confirmed or re-identified) projects a few dozen points (and, where blocks lack readings, the
object's points) into every stored keyframe at once.
Keyframes are a ring buffer (``max_keyframes``), so memory is bounded. They are exported
(:meth:`FreeSpaceMap.keyframes`) and restored (:meth:`FreeSpaceMap.restore`) with the memory
file, so a loaded memory can tell APPEARED at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memory_node.core import support_surface
from memory_node.core.config import param
from memory_node.core.geometry import invert_transform
from memory_node.core.types import FreeSpaceKeyframes


@dataclass
class FreeSpaceConfig:
    """Free-space keyframes (tell "appeared" from "seen for the first time")."""

    enabled: bool = param(
        True,
        "keep free-space keyframes; without them every newly confirmed object counts as "
        "APPEARED and re-identification needs only its place to have been looked at",
    )
    pool_px: int = param(
        8, "keyframe depth is min-pooled over blocks of this many pixels", min_value=1
    )
    keyframe_min_translation_m: float = param(
        0.25, "a new keyframe once the camera moved this far from the last one, metres",
        min_value=0.0,
    )  # fmt: skip
    keyframe_min_rotation_deg: float = param(
        15.0, "... or turned this much, degrees", min_value=0.0
    )
    keyframe_max_interval_s: float = param(
        2.0, "... or this much time passed, seconds", min_value=0.0
    )
    # 1.0: at 0.75 (then for depth blocks too), on the training change seeds (0-19), objects
    # that had stood there all along had up to 0.47 of their points "seen through" by blocks
    # of far views in which they covered part of a block and lost their readings at their
    # edges (the block read the wall behind); 9 of them made false APPEARED events before any
    # change, and one a false MOVED on a static episode. Depth blocks now weigh lost readings
    # against the object's size instead (max_missing_share).
    min_valid_fraction: float = param(
        1.0,
        "a block of surface heights (surface_pool_px) with a smaller share of valid depth "
        "readings gives no evidence (a thin object may have lost its readings at its edges)",
        min_value=0.0,
        max_value=1.0,
    )
    max_missing_share: float = param(
        1.0,
        "a keyframe block missing depth readings still shows a point seen through when fewer "
        "readings are missing than this share of the pixels the object would cover in that "
        "block (had it stood there, one of them would have read it); 0: a block missing any "
        "reading gives no evidence",
        min_value=0.0,
        max_value=1.0,
    )
    max_keyframes: int = param(3000, "keyframes kept (oldest dropped first)", min_value=1)
    max_range_m: float = param(
        5.0, "points farther from a keyframe's camera give no evidence, metres", min_value=0.1
    )
    margin_m: float = param(
        0.1,
        "a point counts as seen through when the reading is beyond it by this much, metres",
        min_value=0.0,
    )
    appeared_min_free_fraction: float = param(
        0.3,
        "a new object is APPEARED (and a detection may be a moved object) when at least this "
        "share of its points had been seen through before it was first seen",
        min_value=0.0,
        max_value=1.0,
    )
    surface_evidence: bool = param(
        True,
        "also count a point as free when a keyframe saw, from above, only surfaces clearly "
        "below it in the block around it (e.g. the table top under a book put there since; "
        "memory_node/core/support_surface.py)",
    )
    surface_margin_m: float = param(
        0.02,
        "... when the highest reading of that block hit this much below the point, metres",
        min_value=0.0,
    )
    # 4, not pool_px (8): on the training change seeds (0-19), with the depth grid's blocks
    # (every reading of 8x8 pixels valid) the table under the mug added in seed 1 was seen from
    # 2.5 m only through blocks missing a reading, and APPEARED recall was 0.72 (18/25); with
    # 4x4 blocks, 0.80 (20/25: that mug and a jenga piece), no false event more.
    surface_pool_px: int = param(
        4,
        "the highest hit is kept per block of this many pixels (a finer grid than the depth's)",
        min_value=1,
    )
    surface_max_range_m: float = param(
        3.0, "... and the point is at most this far from the keyframe's camera, metres",
        min_value=0.0,
    )  # fmt: skip
    appeared_min_age_s: float = param(
        0.0,
        "the free-space evidence must be at least this much older than the object's first "
        "sighting, seconds (0: any keyframe before it)",
        min_value=0.0,
    )


def _own_pixels(
    given: np.ndarray, sizes: np.ndarray, fill: float, dtype: type = np.float16
) -> np.ndarray:
    """Copy keyframe i's own ``sizes[i]`` pixels of ``given`` into a new ``dtype`` array.

    The rest (padding) is ``fill``; the array is at least 1 x 1 per keyframe.
    """
    m = sizes.shape[0]
    h, w = (max(1, int(v)) for v in sizes.max(axis=0)) if m else (1, 1)
    out: np.ndarray = np.full((m, h, w), fill, dtype)
    for i, (hk, wk) in enumerate(sizes):
        out[i, :hk, :wk] = given[i, :hk, :wk]
    return out


class FreeSpaceMap:
    """Ring buffer of pooled depth keyframes with poses; see the module docstring."""

    def __init__(self, config: FreeSpaceConfig | None = None) -> None:
        self.config = config or FreeSpaceConfig()
        self.clear()

    def clear(self) -> None:
        """Forget every keyframe."""
        self._depth = np.zeros((0, 1, 1), np.float16)  # (cap, h, w) pooled depth, 0 = none
        self._missing = np.zeros((0, 1, 1), np.uint16)  # readings each block is missing
        self._height = np.zeros((0, 1, 1), np.float16)  # highest hit per block, NaN = none
        self._hsizes = np.zeros((0, 2), np.int64)  # (h, w) of each height grid, 0 = none
        self._K = np.zeros((0, 3, 3))  # intrinsics of each pooled image
        self._T = np.zeros((0, 4, 4))  # camera_T_map of each keyframe
        self._stamps = np.zeros(0)
        self._sizes = np.zeros((0, 2), np.int64)  # (h, w) of each pooled image
        self._origins = np.zeros((0, 3))  # camera centre of each keyframe, map frame
        self._reach = np.zeros(0)  # farthest a point in view and in range can be from it
        self._axes = np.zeros((0, 3))  # optical axis of each keyframe, map frame
        self._half_angle = np.zeros(0)  # widest angle from the axis of a point in view, rad
        self._count = 0  # keyframes stored
        self._next = 0  # ring slot for the next keyframe

    def __len__(self) -> int:
        """Return the number of keyframes kept."""
        return self._count

    def observe(
        self, depth: np.ndarray, K: np.ndarray, map_T_camera: np.ndarray, stamp: float
    ) -> bool:
        """Keep the frame as a keyframe when the camera moved/turned or time passed enough.

        Returns whether it was kept.
        """
        cfg = self.config
        if self._count:
            last = (self._next - 1) % cfg.max_keyframes  # the newest keyframe
            moved = float(np.linalg.norm(map_T_camera[:3, 3] - self._origins[last]))
            rel = self._T[last, :3, :3] @ map_T_camera[:3, :3]
            angle = np.degrees(np.arccos(np.clip((np.trace(rel) - 1.0) / 2.0, -1.0, 1.0)))
            if (
                moved < cfg.keyframe_min_translation_m
                and angle < cfg.keyframe_min_rotation_deg
                and stamp - self._stamps[last] < cfg.keyframe_max_interval_s
            ):
                return False
        p = cfg.pool_px
        h, w = depth.shape
        hp, wp = h // p, w // p
        if hp == 0 or wp == 0:
            return False
        d = np.asarray(depth[: hp * p, : wp * p], np.float32)
        valid = (np.isfinite(d) & (d > 0)).reshape(hp, p, wp, p)
        d = np.where(valid, d.reshape(hp, p, wp, p), np.inf)
        pooled = d.min(axis=(1, 3))  # the nearest valid reading of each block
        pooled[~np.isfinite(pooled)] = 0.0
        # Readings a block is missing may have been an object's (thin objects lose their depth
        # at edges): the questions weigh them against the object's size (max_missing_share).
        missing = p * p - valid.sum(axis=(1, 3))
        Kp = np.array(K, np.float64, copy=True)
        Kp[0, :] /= p
        Kp[1, :] /= p
        Kp[0, 2] -= 0.5 - 0.5 / p  # pooled pixel i covers pixels i*p .. i*p + p - 1
        Kp[1, 2] -= 0.5 - 0.5 / p
        ph = cfg.surface_pool_px
        self._reserve(hp, wp, h // ph, w // ph)
        i = self._next
        self._depth[i] = 0.0
        self._depth[i, :hp, :wp] = pooled
        self._missing[i] = 0
        self._missing[i, :hp, :wp] = missing
        self._height[i] = np.nan
        self._hsizes[i] = 0
        if cfg.surface_evidence and h // ph and w // ph:
            top = support_surface.pool_heights(
                np.asarray(depth), np.asarray(K), np.asarray(map_T_camera), ph,
                cfg.min_valid_fraction,
            ).astype(np.float16)  # fmt: skip
            top[~np.isfinite(top)] = np.nan  # no reading, or beyond float16: no evidence
            self._height[i, : h // ph, : w // ph] = top
            self._hsizes[i] = (h // ph, w // ph)
        self._K[i], self._stamps[i] = Kp, float(stamp)
        self._T[i] = invert_transform(np.asarray(map_T_camera, np.float64))
        self._sizes[i] = (hp, wp)
        self._derive(slice(i, i + 1))
        self._next = (i + 1) % cfg.max_keyframes
        self._count = min(self._count + 1, cfg.max_keyframes)
        return True

    def _derive(self, rows: slice) -> None:
        """Compute the per-keyframe search bounds of ``rows`` from their K, pose and size."""
        K, sizes = self._K[rows], self._sizes[rows]
        map_T_camera = np.linalg.inv(self._T[rows])
        self._origins[rows] = map_T_camera[:, :3, 3]
        axes = map_T_camera[:, :3, 2]
        self._axes[rows] = axes / np.linalg.norm(axes, axis=1, keepdims=True)
        # a point projecting into the image has |x/z| <= (w + |cx| + 1) / fx (likewise y), so one
        # within max_range_m along the axis is at most this far from the camera centre
        a = (sizes[:, 1] + np.abs(K[:, 0, 2]) + 1.0) / K[:, 0, 0]
        b = (sizes[:, 0] + np.abs(K[:, 1, 2]) + 1.0) / K[:, 1, 1]
        spread = np.sqrt(1.0 + a * a + b * b)
        self._reach[rows] = self.config.max_range_m * spread
        self._half_angle[rows] = np.arccos(1.0 / spread)

    def keyframes(self) -> FreeSpaceKeyframes:
        """Return a copy of the keyframes, oldest first (see :meth:`restore`)."""
        order = (self._next - self._count + np.arange(self._count)) % self.config.max_keyframes
        sizes, hsizes = self._sizes[order], self._hsizes[order]
        h, w = (int(m) for m in sizes.max(axis=0)) if self._count else (0, 0)
        hh, wh = (int(m) for m in hsizes.max(axis=0)) if self._count else (0, 0)
        return FreeSpaceKeyframes(
            depth=self._depth[order, :h, :w],
            missing=self._missing[order, :h, :w].copy(),
            sizes=sizes,
            K=self._K[order],
            camera_T_map=self._T[order],
            stamps=self._stamps[order],
            heights=self._height[order, :hh, :wh].copy(),
            height_sizes=hsizes.copy(),
        )

    def restore(self, keyframes: FreeSpaceKeyframes) -> None:
        """Replace the keyframes by ``keyframes`` (oldest first), e.g. from :meth:`keyframes`.

        Only the newest ``max_keyframes`` are kept. Questions are answered as by the map they
        were exported from (keyframes without block heights, e.g. from files of schema version
        3, give no surface evidence: :meth:`surface_free`); :meth:`observe` continues after the
        newest one.

        Raises:
            InvalidInput: inconsistent or unusable arrays (see
                :meth:`FreeSpaceKeyframes.validate`); the map is unchanged.
        """
        keyframes.validate()
        n = len(keyframes)
        keep = slice(max(0, n - self.config.max_keyframes), n)
        sizes = np.array(np.asarray(keyframes.sizes)[keep], np.int64)
        m = sizes.shape[0]
        depth = _own_pixels(np.asarray(keyframes.depth)[keep], sizes, 0.0)
        self.clear()
        if m == 0:
            return
        self._depth, self._sizes = depth, sizes
        self._missing = np.zeros(depth.shape, np.uint16)
        if keyframes.missing is not None:
            given = np.clip(np.asarray(keyframes.missing)[keep], 0, np.iinfo(np.uint16).max)
            self._missing[:] = _own_pixels(given, sizes, 0, np.uint16)
        self._height = np.full((m, 1, 1), np.nan, np.float16)
        self._hsizes = np.zeros((m, 2), np.int64)
        if keyframes.heights is not None and keyframes.height_sizes is not None:
            self._hsizes = np.array(np.asarray(keyframes.height_sizes)[keep], np.int64)
            self._height = _own_pixels(np.asarray(keyframes.heights)[keep], self._hsizes, np.nan)
        self._K = np.array(np.asarray(keyframes.K)[keep], np.float64)
        self._T = np.array(np.asarray(keyframes.camera_T_map)[keep], np.float64)
        self._stamps = np.array(np.asarray(keyframes.stamps)[keep], np.float64)
        self._origins, self._axes = np.zeros((m, 3)), np.zeros((m, 3))
        self._reach, self._half_angle = np.zeros(m), np.zeros(m)
        self._derive(slice(0, m))
        self._count = m
        self._next = m % self.config.max_keyframes

    def _reserve(self, hp: int, wp: int, hh: int, wh: int) -> None:
        """Grow the ring's storage for a (hp, wp) image, (hh, wh) heights, one more keyframe."""
        cap = self.config.max_keyframes
        n = self._depth.shape[0]
        h, w = max(self._depth.shape[1], hp), max(self._depth.shape[2], wp)
        h2, w2 = max(self._height.shape[1], hh), max(self._height.shape[2], wh)
        want = n if self._count < n else min(cap, max(16, 2 * n))
        if want == n and (h, w, h2, w2) == self._depth.shape[1:] + self._height.shape[1:]:
            return
        depth = np.zeros((want, h, w), np.float16)
        depth[:n, : self._depth.shape[1], : self._depth.shape[2]] = self._depth
        self._depth = depth
        missing = np.zeros((want, h, w), np.uint16)
        missing[:n, : self._missing.shape[1], : self._missing.shape[2]] = self._missing
        self._missing = missing
        height = np.full((want, h2, w2), np.nan, np.float16)
        height[:n, : self._height.shape[1], : self._height.shape[2]] = self._height
        self._height = height
        grow = want - n
        self._K = np.concatenate([self._K, np.zeros((grow, 3, 3))])
        self._T = np.concatenate([self._T, np.zeros((grow, 4, 4))])
        self._stamps = np.concatenate([self._stamps, np.full(grow, np.inf)])
        self._sizes = np.concatenate([self._sizes, np.zeros((grow, 2), np.int64)])
        self._hsizes = np.concatenate([self._hsizes, np.zeros((grow, 2), np.int64)])
        self._origins = np.concatenate([self._origins, np.zeros((grow, 3))])
        self._reach = np.concatenate([self._reach, np.zeros(grow)])
        self._axes = np.concatenate([self._axes, np.zeros((grow, 3))])
        self._half_angle = np.concatenate([self._half_angle, np.zeros(grow)])

    def _project(
        self, points: np.ndarray, old: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Project (N, 3) ``points`` into keyframes ``old`` (k,).

        Returns (z, uc, vc, u, v, inside), each (k, N): depth, pooled-image coordinates (block
        centres at integers), the block's column and row, and whether the point is in view
        and in range.
        """
        K, T, sizes = self._K[old], self._T[old], self._sizes[old]
        pc = np.einsum("kij,nj->kni", T[:, :3, :3], points) + T[:, None, :3, 3]  # (k, n, 3)
        z = pc[..., 2]
        zs = np.where(z > 1e-6, z, 1e-6)
        uc = K[:, None, 0, 0] * pc[..., 0] / zs + K[:, None, 0, 2]
        vc = K[:, None, 1, 1] * pc[..., 1] / zs + K[:, None, 1, 2]
        u = np.floor(uc + 0.5).astype(np.int64)
        v = np.floor(vc + 0.5).astype(np.int64)
        inside = (
            (z > 1e-3)
            & (z <= self.config.max_range_m)
            & (u >= 0)
            & (v >= 0)
            & (u < sizes[:, None, 1])
            & (v < sizes[:, None, 0])
        )
        return z, uc, vc, u, v, inside

    def _cover(self, footprint: np.ndarray, spacing_m: float, old: np.ndarray) -> np.ndarray:
        """Count the pixels surely inside the object's image in each block of keyframes ``old``.

        ``footprint`` (M, 3) are the object's points, ``spacing_m`` apart. Per keyframe the
        image is rasterised in square cells about as wide as that spacing seen from there
        (whole divisors or multiples of a block), and eroded by one cell: a cell at the
        object's outline may hold a point while its pixels read what is behind. A small
        object far away counts nothing. Returns (k, rows, cols) counts (rows, cols: the
        largest pooled image of ``old``).
        """
        pool = self.config.pool_px
        z, uc, vc, _, _, inside = self._project(np.asarray(footprint, np.float64), old)
        rows, cols = (int(m) for m in self._sizes[old].max(axis=0))
        cover = np.zeros((old.size, rows, cols), np.int64)
        # full-resolution pixel of each point: block centre uc = u is pixel u * pool + (pool-1)/2
        x = np.floor(uc * pool + pool / 2.0).astype(np.int64)
        y = np.floor(vc * pool + pool / 2.0).astype(np.int64)
        depth = np.full(old.size, np.nan)  # NaN: none in view
        some = inside.any(axis=1)
        depth[some] = np.nanmedian(np.where(inside, z, np.nan)[some], axis=1)
        wanted = np.ceil(spacing_m * self._K[old, 0, 0] * pool / np.nan_to_num(depth, nan=1e9))
        divisors = [d for d in range(1, pool + 1) if pool % d == 0]
        for need in np.unique(wanted[some]).astype(np.int64):
            cell = next((d for d in divisors if d >= need), pool * -(-int(need) // pool))
            rows_k = np.flatnonzero((wanted == need) & some)
            ins = inside[rows_k]
            i = np.broadcast_to(rows_k[:, None], ins.shape)[ins]
            cx, cy = x[rows_k][ins] // cell + 1, y[rows_k][ins] // cell + 1  # margin of one
            width, height = cols * pool // cell + 3, rows * pool // cell + 3
            cells = np.unique((i * height + cy) * width + cx)
            inner = cells
            for step in (1, -1, width, -width):
                inner = inner[np.isin(inner + step, cells, assume_unique=True)]
            px, rest = (inner % width - 1) * cell, inner // width
            py, k = (rest % height - 1) * cell, rest // height
            span = max(1, cell // pool)  # blocks a cell covers along each axis
            for a in range(span):
                for b in range(span):
                    bv, bu = py // pool + a, px // pool + b
                    ok = (bv < rows) & (bu < cols)  # (erosion keeps cells within the image)
                    np.add.at(cover, (k[ok], bv[ok], bu[ok]), min(cell, pool) ** 2)
        return cover

    def _readings(
        self,
        points: np.ndarray,
        before: float,
        heights: bool = False,
        footprint: tuple[np.ndarray, float] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """Depth of ``points`` and the reading at their pixel in each keyframe that may see them.

        Only keyframes older than ``before`` whose view cone within range can hold a point are
        consulted. Returns (z, reading, inside, height, old): z, reading, inside and height are
        (k, N): the point's depth in keyframe k, the pooled reading at its pixel (0 = none),
        whether it is in view and in range, and (with ``heights``, else all NaN) the highest
        hit of that block (NaN = none); old (k,) indexes the keyframes consulted. None when no
        keyframe qualifies.

        A block missing readings reads 0 (none) unless fewer are missing than
        ``max_missing_share`` of the pixels the object would cover there: ``footprint``, its
        points and their spacing (:meth:`_cover`; None: no object, such blocks read 0).
        """
        n = points.shape[0]
        if n == 0 or self._count == 0:
            return None
        p = np.asarray(points, np.float64)
        centre = p.mean(axis=0)
        radius = float(np.sqrt(((p - centre) ** 2).sum(axis=1).max()))
        offset = centre - self._origins
        dist = np.linalg.norm(offset, axis=1)
        # only keyframes older than `before` whose view cone (within range) can hold a point:
        # the points lie in a ball; its angle from the axis, less its angular radius, must not
        # exceed the widest angle in view
        cos_to_axis = np.einsum("kj,kj->k", offset, self._axes) / np.maximum(dist, 1e-9)
        to_axis = np.arccos(np.clip(cos_to_axis, -1.0, 1.0))
        ball = np.arcsin(np.clip(radius / np.maximum(dist, 1e-9), 0.0, 1.0))
        in_cone = (dist <= radius) | (to_axis - ball <= self._half_angle)
        old = np.flatnonzero((self._stamps < before) & (dist <= self._reach + radius) & in_cone)
        if old.size == 0:
            return None
        z, uc, vc, u, v, inside = self._project(p, old)
        k_idx = np.broadcast_to(old[:, None], z.shape)
        reading = np.zeros(z.shape, np.float32)
        reading[inside] = self._depth[k_idx[inside], v[inside], u[inside]]
        missing = np.zeros(z.shape, np.int64)
        missing[inside] = self._missing[k_idx[inside], v[inside], u[inside]]
        doubt = missing > 0
        if doubt.any():
            # Had the object stood there, the pixels it covers would have read it (nearer
            # than the block's reading) unless every one of them was among the missing ones.
            rows_k, cols_n = np.nonzero(doubt)
            cover = np.zeros(rows_k.size, np.int64)
            if footprint is not None:
                grid = self._cover(footprint[0], footprint[1], old)
                cover = grid[rows_k, v[rows_k, cols_n], u[rows_k, cols_n]]
            hidden = missing[doubt] >= self.config.max_missing_share * cover
            reading[rows_k[hidden], cols_n[hidden]] = 0.0  # could hide it: no evidence
        height = np.full(z.shape, np.nan, np.float32)
        if heights:
            # the height grid's block: back to full-resolution pixels, then its own pooling
            pool, ph = self.config.pool_px, self.config.surface_pool_px
            uh = np.floor(((uc + 0.5 - 0.5 / pool) * pool + 0.5) / ph).astype(np.int64)
            vh = np.floor(((vc + 0.5 - 0.5 / pool) * pool + 0.5) / ph).astype(np.int64)
            hs = self._hsizes[old]
            ok = inside & (uh >= 0) & (vh >= 0) & (uh < hs[:, None, 1]) & (vh < hs[:, None, 0])
            height[ok] = self._height[k_idx[ok], vh[ok], uh[ok]]
        return z, reading, inside, height, old

    def seen_free(
        self,
        points: np.ndarray,
        before: float,
        footprint: tuple[np.ndarray, float] | None = None,
    ) -> np.ndarray:
        """Return (N,) bool: each point was seen through in a keyframe older than ``before``.

        ``footprint``: the points of the object asked about and their spacing, metres, for
        blocks missing readings (``max_missing_share``); None: such blocks give no evidence.
        """
        got = self._readings(points, before, footprint=footprint)
        if got is None:
            return np.zeros(points.shape[0], bool)
        z, reading, inside, _, _ = got
        through = inside & (reading > 0) & (reading > z + self.config.margin_m)
        return np.asarray(np.any(through, axis=0))

    def surface_free(self, points: np.ndarray, before: float) -> np.ndarray:
        """Return (N,) bool: a keyframe older than ``before`` saw only surfaces below each point.

        See :mod:`~memory_node.core.support_surface`; all False without
        ``free_space.surface_evidence``.
        """
        cfg = self.config
        got = self._readings(points, before, heights=True) if cfg.surface_evidence else None
        if got is None:
            return np.zeros(points.shape[0], bool)
        z, _, inside, height, old = got
        below = support_surface.below_surface(
            points,
            self._origins[old],
            z,
            height,
            inside,  # the height grid has its own validity (a NaN block): not the reading's
            cfg.surface_margin_m,
            cfg.surface_max_range_m,
        )
        return np.asarray(np.any(below, axis=0))

    def surface_evidence(
        self, points: np.ndarray, tolerance_m: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Count, per point, the keyframes that saw a surface at it and those that saw through it.

        A keyframe saw a surface at a point when its reading there is within ``tolerance_m`` of
        the point's depth, and through it when the reading is beyond by more than ``margin_m``.

        Returns:
            (hits, through): (N,) int64 each.
        """
        n = points.shape[0]
        got = self._readings(points, np.inf)
        if got is None:
            return np.zeros(n, np.int64), np.zeros(n, np.int64)
        z, reading, inside, _, _ = got
        seen = inside & (reading > 0)
        hits = seen & (np.abs(reading - z) <= tolerance_m)
        through = seen & (reading > z + max(self.config.margin_m, tolerance_m))
        return hits.sum(axis=0).astype(np.int64), through.sum(axis=0).astype(np.int64)

    def free_before(self, points: np.ndarray, before: float) -> float:
        """Share of ``points`` (N, 3) seen through in a keyframe older than ``before``."""
        if points.shape[0] == 0:
            return 0.0
        return float(np.count_nonzero(self.seen_free(points, before))) / points.shape[0]
