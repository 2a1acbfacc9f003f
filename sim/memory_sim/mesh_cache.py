"""Convert DAE/OBJ/STL meshes once into pybullet-friendly textured OBJ parts, cached on disk.

pybullet loads COLLADA (DAE) untextured, aborts on some DAE files (``std::logic_error``) and uses
a single texture per visual shape. This module therefore converts every mesh file into a list of
single-material OBJ *parts* (each with its own ``.mtl`` and PNG texture or diffuse colour), which
a loader turns into one multi-visual pybullet body.

Conversion applies what trimesh ignores: the COLLADA ``<unit meter="...">`` scale and the
``<up_axis>``. Output vertices are metres in the mesh file's own frame, z up, with the DAE
scene-graph node transforms already applied.

Results are cached under ``cache_dir/<stem>-<digest>/`` where the digest covers the file's
content, the converter version and, for DAE, the content of its referenced textures; a
``manifest.json`` written last (atomically) marks a complete entry. The default cache dir is
``$MEMORY_NODE_MESH_CACHE`` or ``~/.cache/memory_node/meshes``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LOG = logging.getLogger(__name__)

#: Bump when the output format or the conversion changes: old cache entries are then ignored.
CONVERTER_VERSION = 1

SUPPORTED_MESH_SUFFIXES = (".dae", ".obj", ".stl")

_COLLADA_NS = "{http://www.collada.org/2005/11/COLLADASchema}"


class MeshConversionError(RuntimeError):
    """A mesh file that cannot be read or converted; the message names the file and why."""


@dataclass(frozen=True)
class MeshPart:
    """One single-material piece of a converted mesh.

    Attributes:
        obj_path: OBJ file; vertices in metres, in the source mesh file's frame, z up.
        texture_path: PNG diffuse texture referenced by the OBJ's ``.mtl``, None when untextured.
        rgba: (4,) diffuse colour in [0, 1]; (1, 1, 1, 1) when a texture carries the colour.
        num_faces: triangle count of the part.
    """

    obj_path: Path
    texture_path: Path | None
    rgba: tuple[float, float, float, float]
    num_faces: int


@dataclass
class ConvertedMesh:
    """Result of converting one mesh file.

    Attributes:
        source: the original mesh file.
        parts: single-material OBJ parts, together forming the mesh.
        extents: (3,) float64 size of the axis-aligned bounds, metres.
        unit_meter: scale applied from the file's unit (1.0 for OBJ/STL).
        missing_textures: texture files the source references but that do not exist.
        from_cache: True when the entry was already on disk.
    """

    source: Path
    parts: list[MeshPart]
    extents: np.ndarray
    unit_meter: float = 1.0
    missing_textures: list[str] = field(default_factory=list)
    from_cache: bool = False


def default_cache_dir() -> Path:
    """Return ``$MEMORY_NODE_MESH_CACHE`` if set, else ``~/.cache/memory_node/meshes``."""
    env = os.environ.get("MEMORY_NODE_MESH_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "memory_node" / "meshes"


@dataclass(frozen=True)
class _ColladaAsset:
    unit_meter: float
    up_axis: str
    images: list[str]


def read_collada_asset(path: Path) -> _ColladaAsset:
    """Read the unit scale, up axis and referenced image files of a COLLADA file.

    Args:
        path: a ``.dae`` file.

    Returns:
        unit (metres per file unit, default 1.0), up axis ("X_UP", "Y_UP" or "Z_UP", default
        "Y_UP" as the COLLADA spec says) and the ``init_from`` of every ``<image>``.

    Raises:
        MeshConversionError: the XML is malformed or the unit is not a positive number.
    """
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise MeshConversionError(f"{path}: malformed COLLADA XML: {exc}") from exc
    ns = _COLLADA_NS if root.tag.startswith(_COLLADA_NS) else ""
    unit_meter = 1.0
    up_axis = "Y_UP"
    asset = root.find(f"{ns}asset")
    if asset is not None:
        unit = asset.find(f"{ns}unit")
        if unit is not None and unit.get("meter") is not None:
            try:
                unit_meter = float(unit.get("meter", "1"))
            except ValueError as exc:
                raise MeshConversionError(
                    f"{path}: <unit meter={unit.get('meter')!r}> is not a number"
                ) from exc
            if not np.isfinite(unit_meter) or unit_meter <= 0:
                raise MeshConversionError(f"{path}: <unit meter={unit_meter}> must be > 0")
        up = asset.findtext(f"{ns}up_axis")
        if up:
            up_axis = up.strip().upper()
    images = [
        (img.findtext(f"{ns}init_from") or "").strip()
        for img in root.iter(f"{ns}image")
        if img.findtext(f"{ns}init_from")
    ]
    return _ColladaAsset(unit_meter=unit_meter, up_axis=up_axis, images=images)


def _up_axis_to_z_up(up_axis: str, path: Path) -> np.ndarray:
    """(4, 4) rotation taking an up axis to z up (Y_UP: +90° about x; X_UP: -90° about y)."""
    T = np.eye(4)
    if up_axis == "Z_UP":
        return T
    if up_axis == "Y_UP":
        T[:3, :3] = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]
        return T
    if up_axis == "X_UP":
        T[:3, :3] = [[0, 0, -1], [0, 1, 0], [1, 0, 0]]
        return T
    raise MeshConversionError(f"{path}: unsupported COLLADA <up_axis> {up_axis!r}")


def _resolve_image(dae_path: Path, init_from: str) -> Path:
    """Path of a COLLADA image reference (relative to the DAE's folder, or a file:// URI)."""
    ref = init_from
    if ref.startswith("file://"):
        ref = ref[len("file://") :]
    ref = urllib.parse.unquote(ref)
    p = Path(ref)
    return p if p.is_absolute() else (dae_path.parent / p)


class MeshCache:
    """Converts mesh files to cached OBJ parts; one instance may serve many imports.

    Args:
        cache_dir: where converted meshes live, created on first use; None =
            ``default_cache_dir()``.
    """

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._memo: dict[Path, ConvertedMesh] = {}
        #: Number of conversions done (cache misses) by this instance.
        self.conversions = 0

    def convert(self, mesh_path: str | Path) -> ConvertedMesh:
        """Return the OBJ parts of ``mesh_path``, converting it on the first call only.

        Args:
            mesh_path: a ``.dae``, ``.obj`` or ``.stl`` file (case-insensitive suffix).

        Raises:
            MeshConversionError: missing file, unsupported format, or a file trimesh cannot read.
        """
        path = Path(mesh_path).resolve()
        if path in self._memo:
            return self._memo[path]
        if not path.is_file():
            raise MeshConversionError(f"mesh file not found: {path}")
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED_MESH_SUFFIXES:
            raise MeshConversionError(
                f"{path}: unsupported mesh format {path.suffix!r} "
                f"(supported: {', '.join(SUPPORTED_MESH_SUFFIXES)})"
            )
        asset = read_collada_asset(path) if suffix == ".dae" else None
        missing: list[str] = []
        digest = hashlib.sha256()
        digest.update(f"v{CONVERTER_VERSION}".encode())
        digest.update(path.read_bytes())
        if asset is not None:
            for ref in asset.images:
                img = _resolve_image(path, ref)
                if img.is_file():
                    digest.update(img.read_bytes())
                else:
                    missing.append(ref)
        for ref in missing:
            LOG.warning(
                "%s: texture %s is missing; that material is rendered untextured", path, ref
            )
        entry = self.cache_dir / f"{path.stem}-{digest.hexdigest()[:16]}"
        manifest = entry / "manifest.json"
        if manifest.is_file():
            result = self._read_manifest(path, entry, manifest)
        else:
            result = self._convert_into(path, entry, asset, missing)
            self.conversions += 1
        self._memo[path] = result
        return result

    def _read_manifest(self, source: Path, entry: Path, manifest: Path) -> ConvertedMesh:
        data = json.loads(manifest.read_text())
        parts = [
            MeshPart(
                obj_path=entry / p["obj"],
                texture_path=(entry / p["texture"]) if p["texture"] else None,
                rgba=tuple(p["rgba"]),  # type: ignore[arg-type]
                num_faces=int(p["num_faces"]),
            )
            for p in data["parts"]
        ]
        return ConvertedMesh(
            source=source,
            parts=parts,
            extents=np.asarray(data["extents"], dtype=np.float64),
            unit_meter=float(data["unit_meter"]),
            missing_textures=list(data["missing_textures"]),
            from_cache=True,
        )

    def _convert_into(
        self, path: Path, entry: Path, asset: _ColladaAsset | None, missing: list[str]
    ) -> ConvertedMesh:
        import trimesh  # heavy import, only needed on a cache miss
        from trimesh.resolvers import FilePathResolver

        try:
            scene = trimesh.load_scene(
                str(path), resolver=FilePathResolver(str(path), allow_anywhere=True)
            )
            meshes = [m for m in scene.dump() if isinstance(m, trimesh.Trimesh)]
        except Exception as exc:  # trimesh raises many types; report them uniformly
            raise MeshConversionError(f"{path}: cannot read mesh: {exc}") from exc
        meshes = [m for m in meshes if len(m.faces) > 0]
        if not meshes:
            raise MeshConversionError(f"{path}: mesh has no triangles")
        T = np.eye(4)
        unit = 1.0
        if asset is not None:
            unit = asset.unit_meter
            T = _up_axis_to_z_up(asset.up_axis, path)
            T[:3, :3] *= unit
        groups: dict[tuple[object, ...], list[trimesh.Trimesh]] = {}
        looks: dict[tuple[object, ...], tuple[object, tuple[float, float, float, float]]] = {}
        for m in meshes:
            m.apply_transform(T)
            image, rgba = _material_look(m)
            key: tuple[object, ...] = (
                hashlib.sha1(image.tobytes()).hexdigest() if image is not None else None,
                *np.round(rgba, 4),
            )
            groups.setdefault(key, []).append(m)
            looks[key] = (image, rgba)

        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
        try:
            parts_json = []
            lo = np.full(3, np.inf)
            hi = np.full(3, -np.inf)
            for i, (key, group) in enumerate(groups.items()):
                image, rgba = looks[key]
                name = f"part{i:03d}"
                tex_name = f"{name}.png" if image is not None else None
                if image is not None:
                    image.save(tmp / f"{name}.png", compress_level=1)  # type: ignore[attr-defined]
                n_faces = _write_obj(tmp, name, group, tex_name, rgba)
                for m in group:
                    lo = np.minimum(lo, m.bounds[0])
                    hi = np.maximum(hi, m.bounds[1])
                parts_json.append(
                    {"obj": f"{name}.obj", "texture": tex_name, "rgba": rgba, "num_faces": n_faces}
                )
            data = {
                "source": str(path),
                "converter_version": CONVERTER_VERSION,
                "unit_meter": unit,
                "extents": (hi - lo).tolist(),
                "missing_textures": missing,
                "parts": parts_json,
            }
            (tmp / "manifest.json").write_text(json.dumps(data, indent=1))
            try:
                tmp.rename(entry)
            except OSError:
                # Another process completed the same entry first: theirs is equivalent.
                if not (entry / "manifest.json").is_file():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        LOG.debug("converted %s into %d parts under %s", path, len(parts_json), entry)
        result = self._read_manifest(path, entry, entry / "manifest.json")
        result.from_cache = False
        return result


def _material_look(mesh: object) -> tuple[object, tuple[float, float, float, float]]:
    """Return (PIL image or None, rgba in [0, 1]) of a trimesh mesh's material."""
    visual = getattr(mesh, "visual", None)
    material = getattr(visual, "material", None)
    image = None
    rgba = np.ones(4)
    if material is not None:
        image = getattr(material, "baseColorTexture", None) or getattr(material, "image", None)
        factor = getattr(material, "baseColorFactor", None)
        if factor is None:
            factor = getattr(material, "diffuse", None)
        if factor is not None:
            f = np.asarray(factor, dtype=np.float64).ravel()
            rgba = f / 255.0 if f.max() > 1.0 or np.asarray(factor).dtype == np.uint8 else f
            if rgba.size == 3:
                rgba = np.append(rgba, 1.0)
    elif visual is not None and getattr(visual, "kind", None) == "vertex":
        colors = np.asarray(visual.vertex_colors, dtype=np.float64)  # type: ignore[attr-defined]
        rgba = colors.mean(axis=0) / 255.0
    uv = getattr(visual, "uv", None)
    if image is not None and (uv is None or len(uv) != len(mesh.vertices)):  # type: ignore[attr-defined]
        image = None  # a texture without per-vertex UVs cannot be mapped
    if image is not None:
        rgba = np.ones(4) * np.array([1, 1, 1, rgba[3]])
    return image, (float(rgba[0]), float(rgba[1]), float(rgba[2]), float(rgba[3]))


def _write_obj(
    folder: Path,
    name: str,
    meshes: list[object],
    texture: str | None,
    rgba: tuple[float, float, float, float],
) -> int:
    """Write ``name.obj`` + ``name.mtl`` (``meshes``, one material); return the face count."""
    mtl = [f"newmtl {name}", f"Kd {rgba[0]:.6f} {rgba[1]:.6f} {rgba[2]:.6f}", f"d {rgba[3]:.6f}"]
    if texture:
        mtl.append(f"map_Kd {texture}")
    (folder / f"{name}.mtl").write_text("\n".join(mtl) + "\n")
    lines = [f"mtllib {name}.mtl", f"o {name}", f"usemtl {name}"]
    offset = 0
    n_faces = 0
    chunks: list[str] = []
    for m in meshes:
        v = np.asarray(m.vertices, dtype=np.float64)  # type: ignore[attr-defined]
        f = np.asarray(m.faces, dtype=np.int64) + 1 + offset  # type: ignore[attr-defined]
        vn = np.asarray(m.vertex_normals, dtype=np.float64)  # type: ignore[attr-defined]
        chunks.append("\n".join(f"v {a:.6f} {b:.6f} {c:.6f}" for a, b, c in v))
        chunks.append("\n".join(f"vn {a:.5f} {b:.5f} {c:.5f}" for a, b, c in vn))
        if texture:
            uv = np.asarray(m.visual.uv, dtype=np.float64)  # type: ignore[attr-defined]
            chunks.append("\n".join(f"vt {a:.6f} {b:.6f}" for a, b in uv))
            chunks.append("\n".join(f"f {a}/{a}/{a} {b}/{b}/{b} {c}/{c}/{c}" for a, b, c in f))
        else:
            chunks.append("\n".join(f"f {a}//{a} {b}//{b} {c}//{c}" for a, b, c in f))
        offset += len(v)
        n_faces += len(f)
    (folder / f"{name}.obj").write_text("\n".join(lines + chunks) + "\n")
    return n_faces
