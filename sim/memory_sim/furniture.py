"""Furniture built from primitives (and the textured box mesh of pybullet_data's table).

Every builder returns a :class:`Furniture`: parts in the object's frame (origin on the floor at
the centre of the footprint, z up, front facing +y, back at -y), the footprint, and the surfaces
small objects can rest on. Stateful pieces (doors, drawers, lamps) carry parts that exist only in
one state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from memory_sim.scene import PartSpec, Pose

Rgba = tuple[float, float, float, float]

WOOD: Rgba = (0.55, 0.38, 0.22, 1.0)
LIGHT_WOOD: Rgba = (0.78, 0.62, 0.43, 1.0)
WHITE: Rgba = (0.92, 0.92, 0.9, 1.0)
GREY: Rgba = (0.5, 0.5, 0.53, 1.0)
DARK: Rgba = (0.12, 0.12, 0.13, 1.0)
METAL: Rgba = (0.7, 0.72, 0.75, 1.0)
TABLE_TOP_MESH = "table/table.obj"  # unit cube with a wood texture, shipped in pybullet_data


@dataclass
class Surface:
    """A horizontal rectangle objects can rest on, in the object's frame.

    Attributes:
        center_xy: (2,) metres.
        size_xy: (2,) extents, metres.
        z: height of the surface, metres.
        clearance: free height above it (metres), limits what may be put there.
    """

    center_xy: tuple[float, float]
    size_xy: tuple[float, float]
    z: float
    clearance: float = 1.0


@dataclass
class Furniture:
    """A piece of furniture ready to become an ObjectSpec.

    Attributes:
        kind: builder key, used in object names (e.g. "refrigerator").
        label: class label.
        parts: parts in the object's frame.
        footprint: (width along x, depth along y), metres.
        surfaces: where small objects may go.
        states: possible states; empty for stateless pieces.
        state: initial state.
        tall: taller than the camera height (must stand against a wall).
    """

    kind: str
    label: str
    parts: tuple[PartSpec, ...]
    footprint: tuple[float, float]
    surfaces: list[Surface] = field(default_factory=list)
    states: tuple[str, ...] = ()
    state: str = ""
    tall: bool = False


def box(
    size: tuple[float, float, float],
    center: tuple[float, float, float],
    rgba: Rgba,
    states: tuple[str, ...] = (),
    yaw: float = 0.0,
) -> PartSpec:
    """Return a box part of full extents ``size`` centred at ``center`` (object frame)."""
    return PartSpec("box", size, pose=Pose.from_xyz_rpy(center, yaw=yaw), rgba=rgba, states=states)


def cylinder(
    diameter: float,
    height: float,
    center: tuple[float, float, float],
    rgba: Rgba,
    states: tuple[str, ...] = (),
) -> PartSpec:
    """Return a vertical cylinder part centred at ``center`` (object frame)."""
    return PartSpec(
        "cylinder", (diameter, diameter, height), pose=Pose(center), rgba=rgba, states=states
    )


def table(w: float, d: float, h: float, label: str = "table", kind: str = "table") -> Furniture:
    """Return a four-legged table with a textured wooden top."""
    top = PartSpec(
        "mesh",
        mesh_path=TABLE_TOP_MESH,
        mesh_scale=(w, d, 0.04),
        pose=Pose((0.0, 0.0, h - 0.02)),
        rgba=None,
    )
    legs = tuple(
        box(
            (0.05, 0.05, h - 0.04),
            (sx * (w / 2 - 0.06), sy * (d / 2 - 0.06), (h - 0.04) / 2),
            WOOD,
        )
        for sx in (-1, 1)
        for sy in (-1, 1)
    )
    return Furniture(kind, label, (top, *legs), (w, d), [Surface((0, 0), (w, d), h)])


def chair(rgba: Rgba) -> Furniture:
    """Return a chair facing +y."""
    s, h = 0.45, 0.45
    legs = tuple(
        box(
            (0.04, 0.04, h - 0.04),
            (sx * (s / 2 - 0.03), sy * (s / 2 - 0.03), (h - 0.04) / 2),
            WOOD,
        )
        for sx in (-1, 1)
        for sy in (-1, 1)
    )
    seat = box((s, s, 0.04), (0, 0, h - 0.02), rgba)
    back = box((s, 0.04, 0.45), (0, -s / 2 + 0.02, h + 0.225), rgba)
    return Furniture("chair", "chair", (*legs, seat, back), (s, s))


def counter(w: float, rgba: Rgba) -> Furniture:
    """Return a kitchen counter with a drawer (states open/closed)."""
    d, h = 0.6, 0.9
    body = box((w, d, h - 0.04), (0, 0, (h - 0.04) / 2), rgba)
    top = box((w + 0.02, d + 0.02, 0.04), (0, 0, h - 0.02), GREY)
    dw = min(0.6, w - 0.1)
    drawer_closed = box((dw, 0.02, 0.16), (0, d / 2 + 0.01, h - 0.14), WHITE, ("closed",))
    drawer_open = box((dw, 0.4, 0.16), (0, d / 2 + 0.2 - 0.1, h - 0.14), WHITE, ("open",))
    return Furniture(
        "counter",
        "counter",
        (body, top, drawer_closed, drawer_open),
        (w, d),
        [Surface((0, 0), (w, d), h)],
        ("open", "closed"),
        "closed",
    )


def cabinet(
    w: float, d: float, h: float, rgba: Rgba, label: str = "cabinet", kind: str = "cabinet"
) -> Furniture:
    """Return a cabinet with one hinged door (states open/closed)."""
    body = box((w, d, h), (0, 0, h / 2), rgba)
    door_closed = box((w - 0.02, 0.02, h - 0.04), (0, d / 2 + 0.01, h / 2), rgba, ("closed",))
    handle = box((0.03, 0.03, 0.2), (w / 2 - 0.08, d / 2 + 0.035, h / 2), METAL, ("closed",))
    door_open = box(
        (0.02, w - 0.02, h - 0.04), (-w / 2 + 0.01, d / 2 + w / 2, h / 2), rgba, ("open",)
    )
    surfaces = [Surface((0, 0), (w, d), h)] if h < 1.3 else []
    return Furniture(
        kind,
        label,
        (body, door_closed, handle, door_open),
        (w, d),
        surfaces,
        ("open", "closed"),
        "closed",
        tall=h > 1.3,
    )


def drawers(w: float, d: float, h: float, rgba: Rgba, label: str, kind: str) -> Furniture:
    """Return a chest with a top drawer (states open/closed), e.g. a nightstand or dresser."""
    body = box((w, d, h), (0, 0, h / 2), rgba)
    fh = 0.3 * h
    front_closed = box(
        (w - 0.04, 0.02, fh), (0, d / 2 + 0.01, h - fh / 2 - 0.03), LIGHT_WOOD, ("closed",)
    )
    out = 0.6 * d
    drawer_open = box(
        (w - 0.06, out, fh), (0, d / 2 + out / 2 - 0.02, h - fh / 2 - 0.03), LIGHT_WOOD, ("open",)
    )
    return Furniture(
        kind,
        label,
        (body, front_closed, drawer_open),
        (w, d),
        [Surface((0, 0), (w, d), h)],
        ("open", "closed"),
        "closed",
    )


def shelf(
    w: float, d: float, h: float, boards: int, rgba: Rgba, label: str = "shelf"
) -> Furniture:
    """Return an open shelf with ``boards`` levels; every level is a surface."""
    t = 0.03
    parts = [
        box((t, d, h), (-w / 2 + t / 2, 0, h / 2), rgba),
        box((t, d, h), (w / 2 - t / 2, 0, h / 2), rgba),
        box((w, t, h), (0, -d / 2 + t / 2, h / 2), rgba),
    ]
    surfaces = []
    gap = (h - t) / boards
    for i in range(boards + 1):
        z = 0.05 + i * gap if i < boards else h - t / 2
        parts.append(box((w - 2 * t, d - t, t), (0, t / 2, z), rgba))
        surfaces.append(
            Surface((0, t / 2), (w - 2 * t, d - t), z + t / 2, gap - t if i < boards else 1.0)
        )
    return Furniture("shelf", label, tuple(parts), (w, d), surfaces, tall=h > 1.3)


def sofa(w: float, rgba: Rgba, label: str = "sofa", kind: str = "sofa") -> Furniture:
    """Return a sofa (or armchair) facing +y."""
    d = 0.9
    base = box((w, d, 0.42), (0, 0, 0.21), rgba)
    back = box((w, 0.2, 0.42), (0, -d / 2 + 0.1, 0.63), rgba)
    arms = tuple(box((0.18, d, 0.62), (sx * (w / 2 - 0.09), 0, 0.31), rgba) for sx in (-1, 1))
    seat = Surface((0, 0.1), (w - 0.4, d - 0.25), 0.42)
    return Furniture(kind, label, (base, back, *arms), (w, d), [seat])


def bed(w: float, rgba: Rgba) -> Furniture:
    """Return a bed with its headboard at -y."""
    d = 2.05
    frame = box((w, d, 0.3), (0, 0, 0.15), WOOD)
    mattress = box((w - 0.06, d - 0.08, 0.2), (0, 0.02, 0.4), WHITE)
    blanket = box((w - 0.04, 1.2, 0.03), (0, 0.35, 0.515), rgba)
    pillow = box((w * 0.7, 0.35, 0.12), (0, -d / 2 + 0.3, 0.56), WHITE)
    head = box((w, 0.06, 1.0), (0, -d / 2 + 0.03, 0.5), WOOD)
    surface = Surface((0, 0.35), (w - 0.2, 1.1), 0.53)
    return Furniture("bed", "bed", (frame, mattress, blanket, pillow, head), (w, d), [surface])


def tv_stand() -> Furniture:
    """Return a low TV stand; the television is a separate object placed on it."""
    w, d, h = 1.3, 0.42, 0.5
    return Furniture(
        "tv_stand",
        "tv stand",
        (box((w, d, h), (0, 0, h / 2), DARK),),
        (w, d),
        [Surface((0, 0), (w, d), h)],
    )


def television() -> Furniture:
    """Return a flat television on a foot (to stand on a TV stand)."""
    foot = box((0.3, 0.2, 0.03), (0, 0, 0.015), DARK)
    neck = box((0.06, 0.04, 0.1), (0, -0.02, 0.08), DARK)
    screen = box((1.0, 0.05, 0.6), (0, -0.02, 0.43), (0.05, 0.05, 0.07, 1.0))
    return Furniture("television", "television", (foot, neck, screen), (1.0, 0.2))


def lamp() -> Furniture:
    """Return a floor lamp whose shade is bright when ``on`` and dull when ``off``."""
    base = cylinder(0.3, 0.03, (0, 0, 0.015), DARK)
    pole = cylinder(0.03, 1.35, (0, 0, 0.7), METAL)
    shade_on = cylinder(0.38, 0.3, (0, 0, 1.5), (1.0, 0.95, 0.55, 1.0), ("on",))
    shade_off = cylinder(0.38, 0.3, (0, 0, 1.5), (0.55, 0.52, 0.45, 1.0), ("off",))
    return Furniture(
        "lamp",
        "lamp",
        (base, pole, shade_on, shade_off),
        (0.38, 0.38),
        [],
        ("on", "off"),
        "off",
        tall=True,
    )


def plant() -> Furniture:
    """Return a potted plant."""
    pot = cylinder(0.32, 0.32, (0, 0, 0.16), (0.7, 0.36, 0.22, 1.0))
    leaves = PartSpec(
        "sphere", (0.6, 0.6, 0.6), pose=Pose((0, 0, 0.62)), rgba=(0.2, 0.5, 0.2, 1.0)
    )
    return Furniture("plant", "plant", (pot, leaves), (0.5, 0.5))


def bathtub() -> Furniture:
    """Return a bathtub."""
    w, d, h = 1.7, 0.78, 0.55
    shell = box((w, d, h - 0.02), (0, 0, (h - 0.02) / 2), WHITE)
    water = box((w - 0.16, d - 0.16, 0.02), (0, 0, h - 0.01), (0.6, 0.8, 0.95, 1.0))
    return Furniture("bathtub", "bathtub", (shell, water), (w, d))


def toilet() -> Furniture:
    """Return a toilet with its tank at -y."""
    bowl = cylinder(0.38, 0.42, (0, 0.05, 0.21), WHITE)
    tank = box((0.42, 0.18, 0.4), (0, -0.2, 0.6), WHITE)
    return Furniture("toilet", "toilet", (bowl, tank), (0.45, 0.65))


def sink() -> Furniture:
    """Return a sink cabinet with a basin."""
    w, d, h = 0.8, 0.5, 0.85
    body = box((w, d, h - 0.03), (0, 0, (h - 0.03) / 2), LIGHT_WOOD)
    top = box((w, d, 0.03), (0, 0, h - 0.015), WHITE)
    basin = cylinder(0.4, 0.04, (0, 0.02, h + 0.02), (0.85, 0.88, 0.9, 1.0))
    tap = box((0.04, 0.12, 0.18), (0, -d / 2 + 0.08, h + 0.09), METAL)
    return Furniture("sink", "sink", (body, top, basin, tap), (w, d))


def washing_machine() -> Furniture:
    """Return a washing machine with a round door."""
    body = box((0.6, 0.6, 0.85), (0, 0, 0.425), WHITE)
    door = PartSpec(
        "cylinder",
        (0.36, 0.36, 0.03),
        pose=Pose.from_xyz_rpy((0, 0.31, 0.45), roll=math.pi / 2),
        rgba=(0.25, 0.3, 0.35, 1.0),
    )
    return Furniture(
        "washing_machine",
        "washing machine",
        (body, door),
        (0.6, 0.6),
        [Surface((0, 0), (0.6, 0.6), 0.85)],
    )


def stove() -> Furniture:
    """Return a stove with four burners."""
    body = box((0.6, 0.6, 0.88), (0, 0, 0.44), WHITE)
    top = box((0.6, 0.6, 0.02), (0, 0, 0.89), DARK)
    burners = tuple(
        cylinder(0.16, 0.01, (sx * 0.14, sy * 0.14, 0.905), GREY)
        for sx in (-1, 1)
        for sy in (-1, 1)
    )
    return Furniture("stove", "stove", (body, top, *burners), (0.6, 0.6))


def door_leaf(width: float, height: float) -> tuple[PartSpec, ...]:
    """Return the parts of a hinged door in an opening of ``width`` (frame: opening centre).

    The object frame has x along the wall, y across it (into the second room); ``closed`` fills
    the opening, ``open`` swings 90 degrees into the first room (-y) around the hinge at -x.
    """
    closed = box((width - 0.02, 0.04, height), (0, 0, height / 2), LIGHT_WOOD, ("closed",))
    opened = box(
        (0.04, width - 0.02, height),
        (-width / 2 + 0.03, -width / 2, height / 2),
        LIGHT_WOOD,
        ("open",),
    )
    return closed, opened
