"""Seeded procedural household: a grid of rooms joined by doorways, furnished, with small objects.

Layout: ``rooms_x`` x ``rooms_y`` rectangular rooms on a grid (column widths and row depths drawn
from the seed). A random spanning tree of neighbouring rooms, plus extra links with
``extra_door_prob``, get a doorway in their shared wall; about half the doorways get a door leaf
(an object with states open/closed). Each room type has its furniture (primitives, see
:mod:`memory_sim.furniture`) placed against walls or near the centre without blocking doorways,
and ``objects_per_room`` small objects from :mod:`memory_sim.assets` on its surfaces.

Names are ``<room>/<kind>_<k>`` (e.g. ``kitchen/mug_0``), deterministic for a seed, so episode
files can refer to them. Rooms are named by type (``kitchen``, ``living_room``; a repeated type
gets a suffix: ``bedroom_2``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pybullet
from pybullet_utils.bullet_client import BulletClient

from memory_node.core.config import param
from memory_sim import furniture as fu
from memory_sim.assets import object_from_asset
from memory_sim.scene import (
    ObjectSpec,
    PartSpec,
    PortalSpec,
    Pose,
    RoomSpec,
    SceneSpec,
    body_aabb,
    spawn_object,
)

LOG = logging.getLogger(__name__)

ROOM_TYPES = ("kitchen", "living room", "bedroom", "bathroom", "office", "dining room")
EXTRA_ROOM_TYPES = ("bedroom", "hallway", "office", "living room")
WALL_T = 0.1
DOOR_H = 2.05
FLOOR_COLORS = {
    "kitchen": (0.85, 0.83, 0.78, 1.0),
    "living room": (0.62, 0.48, 0.34, 1.0),
    "bedroom": (0.7, 0.6, 0.55, 1.0),
    "bathroom": (0.75, 0.82, 0.85, 1.0),
    "office": (0.55, 0.55, 0.5, 1.0),
    "dining room": (0.66, 0.5, 0.36, 1.0),
    "hallway": (0.6, 0.6, 0.6, 1.0),
}
MOVABLE_FURNITURE = ("chair", "plant")  # furniture a person moves around
WALL_COLOR = (0.93, 0.91, 0.86, 1.0)
FABRICS = (
    (0.3, 0.35, 0.55, 1.0),
    (0.55, 0.25, 0.2, 1.0),
    (0.35, 0.5, 0.35, 1.0),
    (0.6, 0.55, 0.45, 1.0),
    (0.4, 0.4, 0.42, 1.0),
)
SMALL_OBJECTS = {
    "kitchen": ("mug", "mug", "bowl", "bottle", "tray", "jenga"),
    "living room": ("teddy", "ball", "book", "book", "lego", "duck", "box"),
    "bedroom": ("teddy", "book", "laptop", "ball", "duck"),
    "bathroom": ("duck", "duck", "bottle", "tray"),
    "office": ("laptop", "mug", "book", "lego", "jenga", "toy", "domino"),
    "dining room": ("mug", "bowl", "bottle", "tray", "mug"),
    "hallway": ("box", "ball", "teddy", "book"),
}


@dataclass
class ProceduralConfig:
    """Parameters of the procedural household."""

    seed: int = param(0, "seed of the layout, furniture and objects", min_value=0)
    rooms_x: int = param(3, "rooms along map x", min_value=1, max_value=5)
    rooms_y: int = param(2, "rooms along map y", min_value=1, max_value=5)
    room_size_min_m: float = param(3.8, "smallest room side", min_value=2.5, max_value=10.0)
    room_size_max_m: float = param(5.0, "largest room side", min_value=2.5, max_value=10.0)
    wall_height_m: float = param(2.4, "height of the walls", min_value=2.1, max_value=4.0)
    door_width_m: float = param(0.95, "clear width of doorways", min_value=0.7, max_value=1.6)
    extra_door_prob: float = param(
        0.35,
        "probability of a doorway between neighbours beyond a spanning tree",
        min_value=0.0,
        max_value=1.0,
    )
    door_leaf_prob: float = param(
        0.5,
        "probability that a doorway has a door (states open/closed)",
        min_value=0.0,
        max_value=1.0,
    )
    objects_per_room: int = param(5, "small movable objects per room", min_value=0, max_value=20)


@dataclass
class _Rect:
    """Axis-aligned rectangle in the map frame (metres)."""

    x0: float
    y0: float
    x1: float
    y1: float

    def overlaps(self, other: _Rect, margin: float = 0.0) -> bool:
        """Tell whether the rectangles overlap after growing this one by ``margin``."""
        return not (
            self.x1 + margin <= other.x0
            or other.x1 <= self.x0 - margin
            or self.y1 + margin <= other.y0
            or other.y1 <= self.y0 - margin
        )


@dataclass
class _PlacedSurface:
    """A surface in the map frame, with what already stands on it."""

    owner: str
    rect: _Rect
    z: float
    clearance: float
    taken: list[tuple[float, float, float]]  # (x, y, radius)


class _Builder:
    """State of one generation run."""

    def __init__(self, config: ProceduralConfig) -> None:
        if config.room_size_min_m > config.room_size_max_m:
            raise ValueError("procedural: room_size_min_m > room_size_max_m")
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.objects: list[ObjectSpec] = []
        self.rooms: list[RoomSpec] = []
        self.portals: list[PortalSpec] = []
        self.counters: dict[tuple[str, str], int] = {}
        self.occupied: dict[str, list[_Rect]] = {}
        self.surfaces: dict[str, list[_PlacedSurface]] = {}
        self.client = BulletClient(connection_mode=pybullet.DIRECT)
        self.extent_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def name(self, room: str, kind: str) -> str:
        """Return the next free name ``<room>/<kind>_<k>``."""
        k = self.counters.get((room, kind), 0)
        self.counters[(room, kind)] = k + 1
        return f"{room}/{kind}_{k}"

    def local_extent(self, key: str, spec: ObjectSpec) -> tuple[np.ndarray, np.ndarray]:
        """Return (min, max) of ``spec``'s geometry at the identity pose (cached per key)."""
        if key not in self.extent_cache:
            probe = ObjectSpec(
                "probe",
                spec.label,
                Pose(),
                spec.urdf,
                spec.scale,
                spec.parts,
                state=spec.state,
                states=spec.states,
            )
            body = spawn_object(self.client, probe)
            self.extent_cache[key] = body_aabb(self.client, body)
            self.client.removeBody(body)
        return self.extent_cache[key]


def generate_house(config: ProceduralConfig | None = None) -> SceneSpec:
    """Generate a furnished house; the same config always gives the same SceneSpec."""
    config = config or ProceduralConfig()
    b = _Builder(config)
    try:
        _layout(b)
        for room in b.rooms:
            _furnish(b, room)
        for room in b.rooms:
            _scatter(b, room)
    finally:
        b.client.disconnect()
    spec = SceneSpec(
        name=f"procedural_seed{config.seed}",
        rooms=b.rooms,
        portals=b.portals,
        objects=b.objects,
        source=f"memory_sim.procedural seed={config.seed} rooms={config.rooms_x}x{config.rooms_y}",
    )
    spec.validate()
    n_inst = sum(not o.structure for o in spec.objects)
    LOG.info("generated %s: %d rooms, %d objects", spec.name, len(spec.rooms), n_inst)
    return spec


# ---------------------------------------------------------------------------- layout
def _layout(b: _Builder) -> None:
    """Make rooms, floors, walls, doorways and door leaves."""
    c, rng = b.config, b.rng
    nx, ny = c.rooms_x, c.rooms_y
    xs = np.concatenate([[0.0], np.cumsum(rng.uniform(c.room_size_min_m, c.room_size_max_m, nx))])
    ys = np.concatenate([[0.0], np.cumsum(rng.uniform(c.room_size_min_m, c.room_size_max_m, ny))])
    xs, ys = np.round(xs, 2), np.round(ys, 2)
    types = list(ROOM_TYPES[: nx * ny])
    while len(types) < nx * ny:
        types.append(EXTRA_ROOM_TYPES[(len(types) - len(ROOM_TYPES)) % len(EXTRA_ROOM_TYPES)])
    order = rng.permutation(len(types))
    grid: dict[tuple[int, int], RoomSpec] = {}
    seen: dict[str, int] = {}
    for k, (i, j) in enumerate((i, j) for j in range(ny) for i in range(nx)):
        label = types[int(order[k])]
        seen[label] = seen.get(label, 0) + 1
        name = label.replace(" ", "_") + ("" if seen[label] == 1 else f"_{seen[label]}")
        room = RoomSpec(
            name, label, (float(xs[i]), float(ys[j])), (float(xs[i + 1]), float(ys[j + 1]))
        )
        grid[(i, j)] = room
        b.rooms.append(room)
        b.occupied[name] = []
        b.surfaces[name] = []
        w, d = xs[i + 1] - xs[i], ys[j + 1] - ys[j]
        b.objects.append(
            ObjectSpec(
                f"{name}/floor",
                "floor",
                Pose((room.center_xy[0], room.center_xy[1], -0.01)),
                parts=(
                    PartSpec(
                        "box", (float(w), float(d), 0.02), rgba=FLOOR_COLORS.get(label, WALL_COLOR)
                    ),
                ),
                room=name,
                structure=True,
            )
        )

    # doorways: random spanning tree over the grid plus extra links
    links: set[tuple[tuple[int, int], tuple[int, int]]] = set()
    visited = {(0, 0)}
    frontier = [((0, 0), n) for n in _neighbours((0, 0), nx, ny)]
    while frontier:
        k = int(rng.integers(len(frontier)))
        a, bb = frontier.pop(k)
        if bb in visited:
            continue
        visited.add(bb)
        links.add((a, bb) if a < bb else (bb, a))
        frontier.extend((bb, n) for n in _neighbours(bb, nx, ny) if n not in visited)
    for i in range(nx):
        for j in range(ny):
            for n in ((i + 1, j), (i, j + 1)):
                inside = n[0] < nx and n[1] < ny
                if inside and ((i, j), n) not in links and rng.random() < c.extra_door_prob:
                    links.add(((i, j), n))

    H, W = c.wall_height_m, c.door_width_m
    # vertical walls (constant x) and horizontal walls (constant y), split at doorways
    for i in range(nx + 1):
        for j in range(ny):
            y0, y1 = float(ys[j]), float(ys[j + 1])
            gap = None
            if 0 < i < nx and ((i - 1, j), (i, j)) in links:
                gap = float(np.round(rng.uniform(y0 + 0.3 + W, y1 - 0.3 - W), 2))
                _doorway(b, grid[(i - 1, j)], grid[(i, j)], float(xs[i]), gap, vertical=True)
            _wall(b, float(xs[i]), y0, y1, gap, vertical=True, height=H)
    for j in range(ny + 1):
        for i in range(nx):
            x0, x1 = float(xs[i]), float(xs[i + 1])
            gap = None
            if 0 < j < ny and ((i, j - 1), (i, j)) in links:
                gap = float(np.round(rng.uniform(x0 + 0.3 + W, x1 - 0.3 - W), 2))
                _doorway(b, grid[(i, j - 1)], grid[(i, j)], float(ys[j]), gap, vertical=False)
            _wall(b, float(ys[j]), x0, x1, gap, vertical=False, height=H)


def _neighbours(cell: tuple[int, int], nx: int, ny: int) -> list[tuple[int, int]]:
    """Return the 4-neighbours of a grid cell inside the grid."""
    i, j = cell
    out = [(i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)]
    return [(a, b) for a, b in out if 0 <= a < nx and 0 <= b < ny]


def _wall(
    b: _Builder, at: float, lo: float, hi: float, gap: float | None, vertical: bool, height: float
) -> None:
    """Add wall segments along a grid line, leaving a doorway (with a lintel) at ``gap``."""
    W = b.config.door_width_m
    spans = [(lo - WALL_T / 2, hi + WALL_T / 2)]
    if gap is not None:
        spans = [(lo - WALL_T / 2, gap - W / 2), (gap + W / 2, hi + WALL_T / 2)]
        lintel_h = height - DOOR_H
        _wall_box(b, at, gap - W / 2, gap + W / 2, DOOR_H + lintel_h / 2, lintel_h, vertical)
    for s0, s1 in spans:
        _wall_box(b, at, s0, s1, height / 2, height, vertical)


def _wall_box(
    b: _Builder, at: float, s0: float, s1: float, zc: float, h: float, vertical: bool
) -> None:
    """Add one wall box spanning [s0, s1] along the line ``at``."""
    length, mid = s1 - s0, 0.5 * (s0 + s1)
    size = (WALL_T, length, h) if vertical else (length, WALL_T, h)
    pos = (at, mid, zc) if vertical else (mid, at, zc)
    k = sum(1 for o in b.objects if o.label == "wall")
    b.objects.append(
        ObjectSpec(
            f"structure/wall_{k}",
            "wall",
            Pose(pos),
            parts=(PartSpec("box", size, rgba=WALL_COLOR),),
            structure=True,
        )
    )


def _doorway(
    b: _Builder, room_a: RoomSpec, room_b: RoomSpec, at: float, gap: float, vertical: bool
) -> None:
    """Record a portal, keep its surroundings free, and maybe hang a door leaf."""
    W = b.config.door_width_m
    pos = (at, gap) if vertical else (gap, at)
    normal = (1.0, 0.0) if vertical else (0.0, 1.0)
    b.portals.append(PortalSpec(room_a.name, room_b.name, pos, W, normal))
    # keep-out zone on both sides of the doorway (room for the door swing and the camera path)
    reach, side = 1.0, W / 2 + 0.35
    if vertical:
        zone = _Rect(at - reach, gap - side, at + reach, gap + side)
    else:
        zone = _Rect(gap - side, at - reach, gap + side, at + reach)
    b.occupied[room_a.name].append(zone)
    b.occupied[room_b.name].append(zone)
    if b.rng.random() < b.config.door_leaf_prob:
        # object frame: x along the wall, y from room_a into room_b
        yaw = -math.pi / 2 if vertical else 0.0
        b.objects.append(
            ObjectSpec(
                b.name(room_a.name, "door"),
                "door",
                Pose.from_xyz_rpy((pos[0], pos[1], 0.0), yaw=yaw),
                parts=fu.door_leaf(W, DOOR_H - 0.02),
                room=room_a.name,
                state="open",
                states=("open", "closed"),
            )
        )


# ---------------------------------------------------------------------------- furniture
def _room_furniture(b: _Builder, room: RoomSpec) -> list[tuple[fu.Furniture, str]]:
    """Return (furniture, placement) for a room type; placement is "wall" or "center"."""
    rng = b.rng
    fab = FABRICS[int(rng.integers(len(FABRICS)))]
    wood = fu.WOOD if rng.random() < 0.5 else fu.LIGHT_WOOD
    t = room.label
    if t == "kitchen":
        return [
            (fu.cabinet(0.75, 0.72, 1.8, fu.WHITE, "refrigerator", "refrigerator"), "wall"),
            (fu.counter(float(rng.uniform(1.4, 2.0)), fu.WHITE), "wall"),
            (fu.stove(), "wall"),
            (fu.counter(float(rng.uniform(1.0, 1.5)), fu.WHITE), "wall"),
            (fu.cabinet(0.8, 0.45, 0.9, wood), "wall"),
            (fu.table(1.2, 0.8, 0.75), "center"),
        ]
    if t == "living room":
        return [
            (fu.sofa(float(rng.uniform(1.8, 2.2)), fab), "wall"),
            (fu.tv_stand(), "wall"),
            (fu.shelf(0.9, 0.35, 1.8, 4, wood, "bookshelf"), "wall"),
            (fu.lamp(), "wall"),
            (fu.plant(), "wall"),
            (fu.sofa(0.9, fab, "armchair", "armchair"), "wall"),
            (fu.table(1.0, 0.6, 0.42, "coffee table", "coffee_table"), "center"),
        ]
    if t == "bedroom":
        return [
            (fu.bed(float(rng.uniform(1.4, 1.8)), fab), "wall"),
            (fu.drawers(0.5, 0.4, 0.55, wood, "nightstand", "nightstand"), "wall"),
            (fu.cabinet(1.0, 0.6, 2.0, wood, "wardrobe", "wardrobe"), "wall"),
            (fu.drawers(1.0, 0.5, 0.85, wood, "dresser", "dresser"), "wall"),
            (fu.lamp(), "wall"),
        ]
    if t == "bathroom":
        return [
            (fu.bathtub(), "wall"),
            (fu.toilet(), "wall"),
            (fu.sink(), "wall"),
            (fu.washing_machine(), "wall"),
            (fu.shelf(0.6, 0.3, 1.2, 3, fu.WHITE), "wall"),
        ]
    if t == "office":
        return [
            (fu.table(1.3, 0.65, 0.75, "desk", "desk"), "wall"),
            (fu.shelf(1.0, 0.35, 1.8, 4, wood, "bookshelf"), "wall"),
            (fu.drawers(0.5, 0.55, 0.7, fu.GREY, "drawer cabinet", "drawer_cabinet"), "wall"),
            (fu.plant(), "wall"),
            (fu.lamp(), "wall"),
            (fu.chair(fab), "center"),
        ]
    if t == "dining room":
        return [
            (fu.table(1.6, 0.9, 0.75), "center"),
            (fu.drawers(1.4, 0.45, 0.85, wood, "sideboard", "sideboard"), "wall"),
            (fu.plant(), "wall"),
            (fu.shelf(0.8, 0.35, 1.2, 3, wood), "wall"),
        ]
    return [
        (fu.shelf(0.8, 0.3, 1.2, 3, wood), "wall"),
        (fu.plant(), "wall"),
        (fu.drawers(0.9, 0.4, 0.8, wood, "dresser", "dresser"), "wall"),
    ]


def _furnish(b: _Builder, room: RoomSpec) -> None:
    """Place the furniture of ``room`` and register surfaces; add chairs and a television."""
    floor = _Rect(room.min_xy[0], room.min_xy[1], room.max_xy[0], room.max_xy[1])
    b.surfaces[room.name].append(
        _PlacedSurface(f"{room.name}/floor", _inset(floor, 0.25), 0.0, 2.0, [])
    )
    for item, placement in _room_furniture(b, room):
        placed = _place(b, room, item, placement)
        if placed is None:
            LOG.debug("no room for %s in %s", item.kind, room.name)
            continue
        name, x, y, yaw = placed
        if item.kind in ("table",) and room.label in ("kitchen", "dining room"):
            _chairs_around(b, room, item, x, y, yaw)
        if item.kind == "tv_stand":
            tv = fu.television()
            _add_furniture(b, room, tv, x, y + 0.0, yaw, register=False, z=item.surfaces[0].z)
            b.surfaces[room.name] = [s for s in b.surfaces[room.name] if s.owner != name]


def _place(
    b: _Builder, room: RoomSpec, item: fu.Furniture, placement: str
) -> tuple[str, float, float, float] | None:
    """Find a free pose for ``item`` (rejection sampling) and add it; None when none found."""
    rng = b.rng
    w, d = item.footprint
    x0, y0 = room.min_xy[0] + WALL_T / 2 + 0.03, room.min_xy[1] + WALL_T / 2 + 0.03
    x1, y1 = room.max_xy[0] - WALL_T / 2 - 0.03, room.max_xy[1] - WALL_T / 2 - 0.03
    for _ in range(60):
        if placement == "wall":
            side = int(rng.integers(4))
            if side == 0:  # south wall, facing +y
                yaw, fx, fy = 0.0, w, d
                x, y = rng.uniform(x0 + fx / 2, x1 - fx / 2), y0 + fy / 2
            elif side == 1:  # north wall, facing -y
                yaw, fx, fy = math.pi, w, d
                x, y = rng.uniform(x0 + fx / 2, x1 - fx / 2), y1 - fy / 2
            elif side == 2:  # west wall, facing +x
                yaw, fx, fy = -math.pi / 2, d, w
                x, y = x0 + fx / 2, rng.uniform(y0 + fy / 2, y1 - fy / 2)
            else:  # east wall, facing -x
                yaw, fx, fy = math.pi / 2, d, w
                x, y = x1 - fx / 2, rng.uniform(y0 + fy / 2, y1 - fy / 2)
        else:
            yaw = 0.0 if rng.random() < 0.5 else math.pi / 2
            fx, fy = (w, d) if yaw == 0.0 else (d, w)
            cx, cy = room.center_xy
            x, y = cx + rng.uniform(-0.5, 0.5), cy + rng.uniform(-0.5, 0.5)
        if fx > x1 - x0 or fy > y1 - y0:
            return None
        rect = _Rect(x - fx / 2, y - fy / 2, x + fx / 2, y + fy / 2)
        if not (
            x0 - 1e-6 <= rect.x0
            and rect.x1 <= x1 + 1e-6
            and y0 - 1e-6 <= rect.y0
            and rect.y1 <= y1 + 1e-6
        ):
            continue
        margin = 0.5 if placement == "center" else 0.08
        if any(rect.overlaps(o, margin) for o in b.occupied[room.name]):
            continue
        x, y = float(np.round(x, 3)), float(np.round(y, 3))
        name = _add_furniture(b, room, item, x, y, yaw)
        if placement == "center":  # keep chairs' and camera's space around central pieces
            b.occupied[room.name].append(_inset(rect, -0.35))
        else:
            b.occupied[room.name].append(rect)
        return name, x, y, yaw
    return None


def _add_furniture(
    b: _Builder,
    room: RoomSpec,
    item: fu.Furniture,
    x: float,
    y: float,
    yaw: float,
    register: bool = True,
    z: float = 0.0,
) -> str:
    """Add ``item`` at (x, y, yaw) as a static object and register its surfaces."""
    name = b.name(room.name, item.kind)
    b.objects.append(
        ObjectSpec(
            name,
            item.label,
            Pose.from_xyz_rpy((x, y, z), yaw=yaw),
            parts=item.parts,
            room=room.name,
            static=item.kind not in MOVABLE_FURNITURE,
            state=item.state,
            states=item.states,
        )
    )
    c, s = math.cos(yaw), math.sin(yaw)
    for surf in item.surfaces if register else []:
        sx, sy = surf.center_xy
        mx, my = x + c * sx - s * sy, y + s * sx + c * sy
        ex, ey = surf.size_xy if abs(s) < 0.5 else surf.size_xy[::-1]
        rect = _Rect(mx - ex / 2, my - ey / 2, mx + ex / 2, my + ey / 2)
        b.surfaces[room.name].append(
            _PlacedSurface(name, _inset(rect, 0.04), z + surf.z, surf.clearance, [])
        )
    return name


def _chairs_around(
    b: _Builder, room: RoomSpec, table: fu.Furniture, x: float, y: float, yaw: float
) -> None:
    """Put chairs on the long sides of a table, facing it."""
    w, d = table.footprint
    n_per_side = 2 if w >= 1.5 else 1
    fab = FABRICS[int(b.rng.integers(len(FABRICS)))]
    c, s = math.cos(yaw), math.sin(yaw)
    for side in (-1, 1):
        for k in range(n_per_side):
            lx = 0.0 if n_per_side == 1 else (k - 0.5) * w / 2
            ly = side * (d / 2 + 0.2)
            mx, my = x + c * lx - s * ly, y + s * lx + c * ly
            # chair front (+y local) must face the table centre
            chair_yaw = math.atan2(y - my, x - mx) - math.pi / 2
            _add_furniture(
                b, room, fu.chair(fab), float(np.round(mx, 3)), float(np.round(my, 3)), chair_yaw
            )


# ---------------------------------------------------------------------------- small objects
def _scatter(b: _Builder, room: RoomSpec) -> None:
    """Put ``objects_per_room`` small objects on the room's surfaces."""
    rng = b.rng
    choices = SMALL_OBJECTS.get(room.label, SMALL_OBJECTS["hallway"])
    surfaces = b.surfaces[room.name]
    for _ in range(b.config.objects_per_room):
        key = choices[int(rng.integers(len(choices)))]
        if key == "toy":
            key = f"toy_{int(rng.integers(1000)):03d}"
        kind = "toy" if key.startswith("toy_") else key
        probe = object_from_asset(key, "probe", Pose())
        lo, hi = b.local_extent(key, probe)
        radius = 0.5 * float(np.hypot(hi[0] - lo[0], hi[1] - lo[1]))
        height = float(hi[2] - lo[2])
        on_floor = key in ("ball", "teddy", "box")
        candidates = [s for s in surfaces if s.clearance > height + 0.02 and (s.z > 0 or on_floor)]
        placed = False
        for _attempt in range(40):
            if not candidates:
                break
            surf = candidates[int(rng.integers(len(candidates)))]
            r = surf.rect
            if r.x1 - r.x0 < 2 * radius or r.y1 - r.y0 < 2 * radius:
                continue
            px = float(rng.uniform(r.x0 + radius, r.x1 - radius))
            py = float(rng.uniform(r.y0 + radius, r.y1 - radius))
            if any(math.hypot(px - tx, py - ty) < radius + tr + 0.03 for tx, ty, tr in surf.taken):
                continue
            if surf.z == 0.0:
                spot = _Rect(px - radius, py - radius, px + radius, py + radius)
                if any(spot.overlaps(o, 0.05) for o in b.occupied[room.name]):
                    continue
            pz = surf.z - float(lo[2]) + 0.002
            yaw = float(rng.uniform(-math.pi, math.pi))
            name = b.name(room.name, kind)
            b.objects.append(
                object_from_asset(
                    key,
                    name,
                    Pose.from_xyz_rpy(
                        (round(px, 3), round(py, 3), round(pz, 4)), yaw=round(yaw, 3)
                    ),
                    room=room.name,
                )
            )
            surf.taken.append((px, py, radius))
            placed = True
            break
        if not placed:
            LOG.debug("no surface for %s in %s", key, room.name)


def _inset(r: _Rect, m: float) -> _Rect:
    """Return ``r`` shrunk by ``m`` metres on every side (grown when negative)."""
    return _Rect(r.x0 + m, r.y0 + m, r.x1 - m, r.y1 - m)
