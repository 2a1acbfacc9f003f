"""Catalogue of small movable objects made from the assets shipped in the pybullet wheel.

Each entry names a file under ``pybullet_data`` (or a primitive recipe), the class label it
stands for, and a uniform scale that gives it a household size. Episodes refer to entries by key
(``asset: mug``); ``toy_<NNN>`` picks ``random_urdfs/<NNN>/<NNN>.urdf`` (000..999).
"""

from __future__ import annotations

import colorsys
import dataclasses
import hashlib
import re
from dataclasses import dataclass

from memory_sim.scene import ObjectSpec, PartSpec, Pose, SceneError


@dataclass(frozen=True)
class AssetEntry:
    """One catalogue entry.

    Attributes:
        key: catalogue key, e.g. "mug".
        label: class label given to instances, e.g. "teddy bear".
        urdf: URDF path relative to pybullet_data ("" for primitive recipes).
        scale: uniform scale applied to the URDF.
        parts: primitive parts (object frame: origin on the floor/support, z up) when no URDF.
    """

    key: str
    label: str
    urdf: str = ""
    scale: float = 1.0
    parts: tuple[PartSpec, ...] = ()


def _box(size: tuple[float, float, float], z: float, rgba: tuple[float, ...]) -> PartSpec:
    """Return a box part of extents ``size`` (metres) centred at height ``z``."""
    return PartSpec("box", size, pose=Pose((0.0, 0.0, z)), rgba=rgba)  # type: ignore[arg-type]


CATALOGUE: dict[str, AssetEntry] = {
    entry.key: entry
    for entry in (
        AssetEntry("mug", "mug", "objects/mug.urdf", 1.0),
        AssetEntry("teddy", "teddy bear", "teddy_vhacd.urdf", 3.0),
        AssetEntry("duck", "duck", "duck_vhacd.urdf", 1.6),
        AssetEntry("ball", "ball", "soccerball.urdf", 0.22),
        AssetEntry("tray", "tray", "tray/traybox.urdf", 0.6),
        AssetEntry("lego", "lego brick", "lego/lego.urdf", 3.0),
        AssetEntry("jenga", "wooden block", "jenga/jenga.urdf", 1.0),
        AssetEntry("domino", "domino", "domino/domino.urdf", 2.5),
        AssetEntry(
            "book",
            "book",
            parts=(_box((0.16, 0.24, 0.04), 0.02, (0.55, 0.12, 0.12, 1.0)),),
        ),
        AssetEntry(
            "laptop",
            "laptop",
            parts=(
                _box((0.34, 0.24, 0.02), 0.01, (0.2, 0.2, 0.22, 1.0)),
                PartSpec(
                    "box",
                    (0.34, 0.015, 0.22),
                    pose=Pose.from_xyz_rpy((0.0, 0.12, 0.12), roll=-0.25),
                    rgba=(0.15, 0.15, 0.17, 1.0),
                ),
            ),
        ),
        AssetEntry(
            "bottle",
            "bottle",
            parts=(
                PartSpec(
                    "cylinder", (0.07, 0.07, 0.2), pose=Pose((0, 0, 0.1)), rgba=(0.1, 0.5, 0.2, 1)
                ),
                PartSpec(
                    "cylinder",
                    (0.03, 0.03, 0.06),
                    pose=Pose((0, 0, 0.23)),
                    rgba=(0.1, 0.5, 0.2, 1),
                ),
            ),
        ),
        AssetEntry(
            "box",
            "cardboard box",
            parts=(_box((0.3, 0.25, 0.2), 0.1, (0.66, 0.5, 0.3, 1.0)),),
        ),
        AssetEntry(
            "bowl",
            "bowl",
            parts=(
                PartSpec(
                    "cylinder",
                    (0.16, 0.16, 0.06),
                    pose=Pose((0, 0, 0.03)),
                    rgba=(0.9, 0.9, 0.85, 1),
                ),
            ),
        ),
    )
}

_TOY = re.compile(r"^toy_(\d{3})$")


def asset(key: str) -> AssetEntry:
    """Return the catalogue entry for ``key`` (``toy_NNN``: random_urdfs); SceneError if none."""
    if key in CATALOGUE:
        return CATALOGUE[key]
    match = _TOY.match(key)
    if match:
        n = match.group(1)
        return AssetEntry(key, "toy", f"random_urdfs/{n}/{n}.urdf", 1.0)
    raise SceneError(f"unknown asset {key!r}; known: {sorted(CATALOGUE)} and toy_000..toy_999")


def instance_tint(name: str) -> tuple[float, float, float, float]:
    """Return a colour tint of its own for the object called ``name`` (stable across runs).

    Real households rarely hold two identical mugs; the tint makes instances of one asset look
    different, as they would, so that re-identifying a moved object by its look is possible.
    The hue comes from a hash of the name; saturation is moderate so textures stay visible.
    """
    digest = hashlib.sha256(name.encode()).digest()
    hue = int.from_bytes(digest[:2], "big") / 65536.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.65, 1.0)
    return (round(r, 3), round(g, 3), round(b, 3), 1.0)


def _blend(
    rgba: tuple[float, float, float, float], tint: tuple[float, float, float, float]
) -> tuple[float, float, float, float]:
    """Blend a part colour 55 % towards ``tint`` (alpha kept)."""
    r, g, b = (round(0.45 * c + 0.55 * t, 3) for c, t in zip(rgba[:3], tint[:3], strict=True))
    return (r, g, b, rgba[3])


def object_from_asset(
    key: str, name: str, pose: Pose, room: str = "", label: str = "", tint_key: str = ""
) -> ObjectSpec:
    """Make a movable ObjectSpec of catalogue entry ``key`` at ``pose`` (map frame).

    Every instance gets a tint of its own (:func:`instance_tint` of ``name``): mesh assets are
    tinted (the tint multiplies their texture), primitive recipes have their part colours blended
    halfway towards it. Instances given one ``tint_key`` share its tint: identical look-alikes.
    """
    entry = asset(key)
    tint = instance_tint(tint_key or name)
    parts = tuple(
        part if part.rgba is None else dataclasses.replace(part, rgba=_blend(part.rgba, tint))
        for part in entry.parts
    )
    return ObjectSpec(
        rgba=tint if entry.urdf else None,
        name=name,
        label=label or entry.label,
        pose=pose,
        urdf=entry.urdf,
        scale=entry.scale,
        parts=parts,
        room=room,
        static=False,
    )
