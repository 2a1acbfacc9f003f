"""memory_replay: a bag written from the simulator replays into the memory of the live run.

The simulator's frames are ingested by the core ("live") and written to rosbag2 files (MCAP and
sqlite3) with rosbags as ``sim_publisher`` publishes them; the replayed memory must hold the same
object ids at the same places (within 1 mm). Bad bags and bad settings exit with status 2, name
the problem and write nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from memory_node.core.scene_memory import SceneMemory
from memory_node.tools.bag import frames_to_messages, write_bag
from memory_node.tools.replay import load_params, main, replay_core, replay_topics
from memory_sim.episode import EpisodeRunner, parse_episode
from memory_sim.simulator import SimConfig

EPISODE = """
name: replay_two_rooms
scene:
  procedural: {seed: 1, rooms_x: 2, rooms_y: 1, objects_per_room: 3}
camera: {height_m: 1.3, pitch_deg: -25, speed_mps: 0.8, yaw_rate_dps: 75}
segments:
  - {name: tour, coverage: {turns: 1}}
"""
FRAMES = 32
PARAMS = ["features.mode:=off"]  # no text model: faster, and the same for live and replay
CONFIG = Path(__file__).resolve().parents[2] / "config" / "scene_memory.yaml"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Return (live memory, bag directories by storage, the frames)."""
    config = SimConfig()
    config.rate_hz = 4.0
    config.camera.width_px, config.camera.height_px = 160, 120
    runner = EpisodeRunner(parse_episode(EPISODE, "replay.yaml"), config)
    frames = []
    for step in runner:
        frames.append(step.frame)
        if len(frames) == FRAMES:
            break
    runner.close()
    _, core_cfg = load_params([str(CONFIG)], PARAMS)
    live = SceneMemory(core_cfg)
    for f in frames:
        live.ingest(f)
    root = tmp_path_factory.mktemp("bags")
    bags = {}
    for storage in ("mcap", "sqlite3"):
        bags[storage] = root / storage
        write_bag(bags[storage], frames_to_messages(frames), storage)
    bags["remapped"] = root / "remapped"
    write_bag(bags["remapped"], frames_to_messages(frames, namespace="cam"), "mcap")
    return live, bags, frames


def assert_same_memory(live: SceneMemory, replayed: SceneMemory) -> None:
    assert len(live.objects) >= 5, "the tour maps several objects"
    assert sorted(replayed.objects) == sorted(live.objects)
    for oid, obj in live.objects.items():
        other = replayed.objects[oid]
        assert other.label == obj.label, oid
        np.testing.assert_allclose(other.center, obj.center, rtol=0, atol=1e-3, err_msg=oid)
        np.testing.assert_allclose(other.size, obj.size, rtol=0, atol=1e-3, err_msg=oid)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_core_replay_equals_the_live_memory(recorded, storage):
    live, bags, frames = recorded
    n = len(frames)
    node_cfg, core_cfg = load_params([str(CONFIG)], PARAMS)
    replayed, stats = replay_core(str(bags[storage]), node_cfg, core_cfg, rate=0.0)
    assert (stats.frames, stats.ingested, sum(stats.dropped.values())) == (n, n, 0)
    assert_same_memory(live, replayed)


def test_remapped_topics_and_a_saved_memory(recorded, tmp_path):
    live, bags, _ = recorded
    out = tmp_path / "memory.db"
    remaps = [
        f"/cam/{t}:=/{t}"
        for t in ("rgb/image", "depth/image", "rgb/camera_info", "camera/pose", "instance/image")
    ]
    remaps.append("/cam/instance/labels:=/instance/labels")
    args = [str(bags["remapped"]), "--core", "--max-speed", "--save", str(out), "--no-progress"]
    args += [a for r in remaps for a in ("--remap", r)] + [a for p in PARAMS for a in ("-p", p)]
    assert main(args) == 0
    saved = SceneMemory(live.config)
    saved.load(str(out))
    assert_same_memory(live, saved)


def test_replay_into_the_node_over_topics(recorded, ros):
    from rclpy.parameter import Parameter

    from memory_node.ros.scene_memory_node import SceneMemoryNode

    live, bags, frames = recorded
    n = len(frames)
    node = ros.add(
        SceneMemoryNode(
            context=ros.context,
            parameter_overrides=[
                Parameter("features.mode", value="off"),
                Parameter("inputs.qos_reliability", value="reliable"),
                Parameter("inputs.qos_depth", value=50),
            ],
        )
    )
    node_cfg, _ = load_params([str(CONFIG)], PARAMS)
    stats = replay_topics(str(bags["mcap"]), node_cfg, rate=2.0, wait_for_subscribers_s=60.0)
    assert stats.messages == 7 * n  # six inputs and /clock per frame
    assert ros.wait_for(lambda: node.delivered["rgb/image"] == n, 60.0), node.counters
    assert ros.wait_for(
        lambda: node.counters["frames_ingested"] + node.counters["frames_skipped"] == n, 60.0
    ), node.counters
    if node.counters["frames_skipped"] == 0:  # every frame ingested: the very same memory
        with node._lock:
            assert_same_memory(live, node.memory)
    else:  # a loaded machine made the node skip frames (newest wins): the same objects seen
        with node._lock:
            assert {o.label for o in node.memory.objects.values()} <= {
                o.label for o in live.objects.values()
            }


def test_replay_with_the_rerun_viewer_records_frames_and_objects(recorded, tmp_path, capsys):
    import rerun.chunk as chunk

    live, bags, frames = recorded
    rrd = tmp_path / "replay.rrd"
    code, err = run_main(
        capsys,
        str(bags["mcap"]),
        "--core",
        "--max-speed",
        "-p",
        PARAMS[0],
        "--viewer",
        "rerun",
        "--rrd",
        str(rrd),
    )
    assert code == 0, err
    images, last = 0, {}
    for c in chunk.RrdReader(str(rrd)).store().stream():
        batch = c.to_record_batch()
        names = batch.schema.names
        if c.entity_path == "/world/camera/image" and "EncodedImage:blob" in names:
            images += batch.num_rows
        if c.entity_path.startswith("/world/objects/") and "Boxes3D:labels" in names:
            last[c.entity_path] = batch.column("Boxes3D:labels").to_pylist()[-1]
    assert images == len(frames)
    ids = {lab.split("[")[1].split("]")[0] for rows in last.values() for lab in rows}
    assert ids == set(live.objects)
    # a replay that fails leaves no recording behind
    bad = tmp_path / "bad.rrd"
    code, err = run_main(
        capsys,
        str(bags["mcap"]),
        "--core",
        "-p",
        "inputs.pose_source:=odometry",
        "--viewer",
        "rerun",
        "--rrd",
        str(bad),
    )
    assert code == 2 and not bad.exists() and list(tmp_path.glob(".bad.rrd*")) == []


def run_main(capsys, *args: str) -> tuple[int, str]:
    code = main([*args, "--no-progress"])
    return code, capsys.readouterr().err


def test_a_truncated_or_corrupt_bag_is_refused(recorded, tmp_path, capsys):
    _, bags, _ = recorded
    for storage, suffix in (("mcap", ".mcap"), ("sqlite3", ".db3")):
        bag = tmp_path / storage
        shutil.copytree(bags[storage], bag)
        (data,) = bag.glob(f"*{suffix}")
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 3])
        out = tmp_path / f"{storage}.db"
        code, err = run_main(capsys, str(bag), "--core", "--save", str(out), "-p", PARAMS[0])
        assert code == 2 and "corrupt or truncated" in err, err
        assert not out.exists()
    code, err = run_main(capsys, str(tmp_path / "nothing_here"), "--core")
    assert code == 2 and "does not exist" in err


def test_a_bag_without_the_needed_topics_names_the_ones_it_has(recorded, tmp_path, capsys):
    _, bags, _ = recorded
    out = tmp_path / "memory.db"
    code, err = run_main(
        capsys,
        str(bags["mcap"]),
        "--core",
        "-p",
        "inputs.pose_source:=odometry",
        "--save",
        str(out),
    )
    assert code == 2 and "bag lacks /odom" in err
    assert "/camera/pose (geometry_msgs/msg/PoseStamped)" in err and "/rgb/image" in err
    assert not out.exists()


def test_an_unknown_message_type_is_refused(tmp_path, capsys):
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    store.register(get_types_from_msg("int32 x", "acme_msgs/msg/Blob"))
    bag = tmp_path / "odd"
    blob = store.types["acme_msgs/msg/Blob"](x=1)
    with Writer(bag, version=9) as writer:
        for topic in ("/rgb/image", "/depth/image", "/rgb/camera_info", "/camera/pose"):
            conn = writer.add_connection(topic, "acme_msgs/msg/Blob", typestore=store)
            writer.write(conn, 1, bytes(store.serialize_cdr(blob, conn.msgtype)))
    code, err = run_main(capsys, str(bag), "--core", "-p", "inputs.use_masks:=false")
    assert code == 2 and "has message type acme_msgs/msg/Blob" in err, err


def odometry_messages(frames, backwards_at: int | None = None):
    """Return the frames' messages, the camera pose sent as odometry (identity extrinsic)."""
    from nav_msgs.msg import Odometry
    from std_msgs.msg import Header

    from memory_node.ros import conversions as conv

    out, k = [], 0
    for topic, stamp, msg in frames_to_messages(frames):
        if topic == "/camera/pose":
            odom_stamp = stamp - 1.0 if k == backwards_at else stamp
            odom = Odometry(header=Header(stamp=conv.sec_to_time(odom_stamp), frame_id="odom"))
            odom.pose.pose = msg.pose
            topic, msg, k = "/odom", odom, k + 1
        out.append((topic, stamp, msg))
    return out


ODOMETRY = [
    "--core",
    "--max-speed",
    "-p",
    "inputs.pose_source:=odometry",
    "-p",
    "pose.base_to_camera_xyzw:=[0.0, 0.0, 0.0, 1.0]",
    "-p",
    PARAMS[0],
]


def test_odometry_replay_equals_the_live_memory(recorded, tmp_path, capsys):
    live, _, frames = recorded
    bag = tmp_path / "odom_bag"
    # logged on the recorder's wall clock (as `ros2 bag record` does with a sim-time robot),
    # each frame's odometry after its images: frames wait for the pose by header stamp
    write_bag(bag, [(t, s + 1.8e9, m) for t, s, m in odometry_messages(frames)])
    out = tmp_path / "memory.db"
    code, err = run_main(capsys, str(bag), *ODOMETRY, "--save", str(out))
    assert code == 0, err
    saved = SceneMemory(live.config)
    saved.load(str(out))
    assert_same_memory(live, saved)


def test_odometry_going_backwards_and_a_bad_extrinsic_are_refused(recorded, tmp_path, capsys):
    _, _, frames = recorded
    bag = tmp_path / "odom_bag"
    write_bag(bag, odometry_messages(frames, backwards_at=len(frames) // 2))
    out = tmp_path / "memory.db"
    code, err = run_main(capsys, str(bag), *ODOMETRY, "--save", str(out))
    assert code == 2 and "/odom: odometry stamps went backwards" in err, err
    assert not out.exists()
    bad = ["-p", "pose.base_to_camera_xyzw:=[0.0, 0.0, 0.0, 2.0]"]
    code, err = run_main(capsys, str(bag), *ODOMETRY, *bad, "--save", str(out))
    assert code == 2 and "not a unit quaternion (norm 2.000000)" in err, err
    assert not out.exists()


def test_an_existing_output_is_refused_without_force(recorded, tmp_path, capsys):
    _, bags, _ = recorded
    out = tmp_path / "memory.db"
    out.write_bytes(b"keep")
    code, err = run_main(capsys, str(bags["mcap"]), "--core", "--save", str(out))
    assert code == 2 and "--force" in err and out.read_bytes() == b"keep"
