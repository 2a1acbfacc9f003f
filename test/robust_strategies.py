"""Hypothesis strategies for every input of the memory nodes: topics, services, files, steps.

Used by the ``make test`` tier (test/robustness/test_robust_fuzz.py, in-process) and by the
``make soak`` tier (tools/soak.py, over DDS against memory_bringup).
"""

from __future__ import annotations

import array
import copy
import math
import struct
from typing import Any

import numpy as np
from hypothesis import strategies as st

from memory_interfaces.srv import (
    GetObjectChanges,
    GetSceneGraph,
    PolicyMemoryStep,
    QueryObjects,
)

# --- scalars ---------------------------------------------------------------------------------

EXTREME_FLOATS = [0.0, -0.0, 1e-300, -1e-300, 1e-45, 1.0, -1.0, 1e6, 1e30, 3e38, -3e38, 1e308]
EXTREME_FLOATS += [-1e308, math.inf, -math.inf, math.nan, 2.0**31, 2.0**63]

any_float = st.one_of(st.sampled_from(EXTREME_FLOATS), st.floats(allow_nan=True))
float32 = st.one_of(
    st.sampled_from([f for f in EXTREME_FLOATS if math.isnan(f) or abs(f) < 3.4e38]),
    st.floats(width=32, allow_nan=True),
)
uint32 = st.one_of(st.sampled_from([0, 1, 2**31 - 1, 2**32 - 1]), st.integers(0, 2**32 - 1))
int32 = st.one_of(st.sampled_from([-(2**31), -1, 0, 2**31 - 1]), st.integers(-(2**31), 2**31 - 1))
int64 = st.one_of(
    st.sampled_from([-(2**63), -1, 0, 2**24, 2**63 - 1]), st.integers(-(2**63), 2**63 - 1)
)
# text the wire can carry (valid UTF-8, no surrogates), empty, long, or huge
text = st.one_of(
    st.sampled_from(["", "mug", "mug\x00table", "ñ中🧠", " " * 40, "x" * 5000]),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=200),
    st.just("y" * (1 << 20)),
)


# --- topics ----------------------------------------------------------------------------------

ENCODINGS = ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "8UC3", "16UC1", "32FC1"]
ENCODINGS += ["64FC1", "32SC1", "16SC1", "8UC1", "yuv422", "", "garbage", "ñ"]


@st.composite
def image_mutation(draw: Any) -> dict[str, Any]:
    """Draw a change of an Image's fields: encoding, sizes, step, data (length, NaN/inf floats)."""
    kind = draw(st.sampled_from(["encoding", "size", "step", "data", "floats", "endian", "all"]))
    m: dict[str, Any] = {"kind": kind}
    if kind in ("encoding", "all"):
        m["encoding"] = draw(st.sampled_from(ENCODINGS))
    if kind in ("size", "all"):
        m["height"] = draw(st.one_of(st.sampled_from([0, 1, 72, 4000]), st.integers(0, 5000)))
        m["width"] = draw(st.one_of(st.sampled_from([0, 1, 96, 3000]), st.integers(0, 5000)))
    if kind in ("step", "all"):
        m["step"] = draw(uint32)
    if kind in ("data", "all"):
        m["data_len"] = draw(st.one_of(st.sampled_from([0, 1, 7]), st.integers(0, 100_000)))
    if kind == "floats":
        m["fill"] = draw(any_float)
        m["share"] = draw(st.floats(0.0, 1.0))
    if kind == "endian":
        m["is_bigendian"] = True
    return m


def apply_image_mutation(msg: Any, m: dict[str, Any], seed: int = 0) -> Any:
    """Return a copy of the Image ``msg`` changed by ``m``."""
    out = copy.deepcopy(msg)
    for key in ("encoding", "height", "width", "step", "is_bigendian"):
        if key in m:
            setattr(out, key, m[key])
    if "data_len" in m:
        out.data = np.random.default_rng(seed).bytes(m["data_len"])
    if "fill" in m:
        n = len(out.data) // 4
        values = np.frombuffer(bytes(out.data), np.float32).copy()
        k = max(1, round(m["share"] * n))
        with np.errstate(over="ignore"):
            values[:k] = np.float32(m["fill"])
        out.data = values.tobytes()
    return out


@st.composite
def camera_info_mutation(draw: Any) -> dict[str, Any]:
    """Intrinsics with extreme values (fx = 1e-300, NaN, negative, zero), sizes."""
    m: dict[str, Any] = {}
    idx = draw(st.lists(st.sampled_from([0, 2, 4, 5, 8, 1, 3]), min_size=1, max_size=4))
    m["k"] = {i: draw(any_float) for i in idx}
    if draw(st.booleans()):
        m["width"] = draw(uint32)
        m["height"] = draw(uint32)
    return m


def apply_camera_info_mutation(msg: Any, m: dict[str, Any]) -> Any:
    """Return a copy of the CameraInfo ``msg`` changed by ``m``."""
    out = copy.deepcopy(msg)
    k = list(out.k)
    for i, v in m["k"].items():
        k[i] = v
    out.k = k
    for key in ("width", "height"):
        if key in m:
            setattr(out, key, m[key])
    return out


@st.composite
def pose_mutation(draw: Any) -> dict[str, Any]:
    """Positions and quaternions of any magnitude (non-unit, zero, NaN), odd frame ids."""
    m: dict[str, Any] = {
        "position": draw(st.lists(any_float, min_size=3, max_size=3)),
    }
    if draw(st.booleans()):
        m["orientation"] = draw(st.lists(any_float, min_size=4, max_size=4))
    if draw(st.booleans()):
        m["frame_id"] = draw(st.sampled_from(["", "map", "odom", "ñ", "x" * 300]))
    return m


def apply_pose_mutation(msg: Any, m: dict[str, Any]) -> Any:
    """Return a copy of the PoseStamped ``msg`` changed by ``m``."""
    out = copy.deepcopy(msg)
    p = out.pose.position
    p.x, p.y, p.z = m["position"]
    if "orientation" in m:
        q = out.pose.orientation
        q.x, q.y, q.z, q.w = m["orientation"]
    if "frame_id" in m:
        out.header.frame_id = m["frame_id"]
    return out


@st.composite
def labels_mutation(draw: Any) -> dict[str, Any]:
    """Ids not in the image, label arrays of mismatched lengths, odd scores and states."""
    n = draw(st.integers(0, 12))
    return {
        "instance_ids": draw(st.lists(uint32, min_size=n, max_size=n)),
        "labels": draw(st.lists(text.filter(lambda s: len(s) < 5000), max_size=n + 2)),
        "scores": draw(st.lists(float32, max_size=n + 2)),
        "states": draw(st.lists(st.sampled_from(["", "open", "closed", "ñ"]), max_size=n + 1)),
    }


def apply_labels_mutation(msg: Any, m: dict[str, Any]) -> Any:
    """Return a copy of the InstanceLabels ``msg`` changed by ``m``."""
    out = copy.deepcopy(msg)
    out.instance_ids = m["instance_ids"]
    out.labels = m["labels"]
    out.scores = [float(np.float32(s)) if math.isfinite(s) else s for s in m["scores"]]
    out.states = m["states"]
    return out


TOPIC_MUTATIONS = {
    "rgb": (image_mutation(), apply_image_mutation),
    "depth": (image_mutation(), apply_image_mutation),
    "instance": (image_mutation(), apply_image_mutation),
    "info": (camera_info_mutation(), apply_camera_info_mutation),
    "pose": (pose_mutation(), apply_pose_mutation),
    "labels": (labels_mutation(), apply_labels_mutation),
}


def mutate(stream: str, msg: Any, mutation: dict[str, Any]) -> Any:
    """Apply one drawn mutation of ``stream`` to its message."""
    apply = TOPIC_MUTATIONS[stream][1]
    return apply(msg, mutation)


# --- stamps ----------------------------------------------------------------------------------

stamp_offsets = st.lists(
    st.one_of(
        st.sampled_from([0.0, -0.001, 0.05, -4.0, 4.0, -155.0, 1e6, -1e6, 2.0**31]),
        st.floats(-1e7, 1e7),
    ),
    min_size=1,
    max_size=12,
)


# --- services --------------------------------------------------------------------------------


@st.composite
def query_request(draw: Any) -> Any:
    """Every QueryObjects field with extreme floats, huge or unicode strings, any k."""
    req = QueryObjects.Request(
        text=draw(text),
        use_near=draw(st.booleans()),
        radius=draw(float32),
        zone_id=draw(text.filter(lambda s: len(s) < 5000)),
        k=draw(uint32),
        include_embeddings=draw(st.booleans()),
    )
    req.near.x, req.near.y, req.near.z = (draw(any_float) for _ in range(3))
    return req


@st.composite
def graph_request(draw: Any) -> Any:
    """Every GetSceneGraph field: focus text, object and token budgets of any size."""
    return GetSceneGraph.Request(
        focus=draw(text), max_objects=draw(uint32), max_tokens=draw(uint32)
    )


@st.composite
def changes_request(draw: Any) -> Any:
    """Every GetObjectChanges field: any since (sec, nanosec), ids, result counts."""
    req = GetObjectChanges.Request(
        object_id=draw(text.filter(lambda s: len(s) < 5000)), max_results=draw(uint32)
    )
    req.since.sec = draw(int32)
    req.since.nanosec = draw(uint32)
    return req


def float32_array(values: list[float]) -> array.array:
    """array('f') of ``values`` (each rounded to float32, overflowing to inf)."""
    return array.array("f", b"".join(struct.pack("<f", _f32(v)) for v in values))


def _f32(v: float) -> float:
    if math.isfinite(v) and abs(v) > 3.4028234e38:
        return math.copysign(math.inf, v)
    return v


@st.composite
def step_request(draw: Any, dim: int, max_tokens: int) -> Any:
    """Draw a policy step: tokens of any magnitude (up to 3e38), wrong sizes, any timestep."""
    n = draw(st.one_of(st.integers(1, 4), st.sampled_from([0, max_tokens + 1])))
    d = draw(st.one_of(st.just(dim), st.sampled_from([0, 1, dim + 1])))
    exponent = draw(st.integers(-40, 38))
    scale = draw(st.sampled_from([1.0, 3.0, -3.0])) * 10.0**exponent
    base = np.random.default_rng(draw(st.integers(0, 2**16))).normal(size=(n * d + d))
    values = (base * scale).tolist()
    if values and draw(st.booleans()):
        values[draw(st.integers(0, len(values) - 1))] = draw(any_float)
    extra = draw(st.sampled_from([0, 0, 0, 1, -1]))
    req = PolicyMemoryStep.Request(
        timestep=draw(st.one_of(st.integers(0, 50), int64)),
        num_tokens=n,
        dim=d,
        write=draw(st.booleans()),
    )
    req.perceptual = float32_array(values[: max(0, n * d + extra)])
    req.cognitive = float32_array(values[n * d : n * d + d])
    return req
