"""Pairing of streams by stamp, not by arrival order."""

from memory_node.core.sync import StampSynchronizer, SyncConfig, diagnose_pairing


def make(slop=0.0, queue=10):
    return StampSynchronizer(["rgb", "depth", "pose"], SyncConfig(slop_s=slop, queue_size=queue))


def test_exact_stamps_pair_whatever_the_arrival_order():
    s = make()
    assert s.add("depth", 1.0, "d1") is None
    assert s.add("pose", 2.0, "p2") is None
    assert s.add("rgb", 2.0, "r2") is None  # depth of t=2 missing
    assert s.add("rgb", 1.0, "r1") is None  # pose of t=1 missing
    b = s.add("depth", 2.0, "d2")
    assert (
        b is not None and b.stamp == 2.0 and b.items == {"rgb": "r2", "depth": "d2", "pose": "p2"}
    )
    # t=1 is now older than the emitted frame: it is stale, never emitted after t=2
    assert s.add("pose", 1.0, "p1") is None
    assert s.dropped["stale"] == 1


def test_approximate_pairing_within_slop_only():
    s = make(slop=0.01)
    s.add("rgb", 1.000, "r")
    s.add("depth", 1.020, "d_far")
    assert s.add("pose", 1.005, "p") is None
    b = s.add("depth", 1.008, "d_near")
    assert b is not None and b.items["depth"] == "d_near"


def test_newest_complete_frame_wins_and_older_count_as_behind():
    s = make()
    for t in (1.0, 2.0, 3.0):
        s.add("rgb", t, f"r{t}")
        s.add("depth", t, f"d{t}")
    b = s.add("pose", 3.0, "p3")
    assert b is not None and b.stamp == 3.0
    assert s.dropped["behind"] == 2


def test_duplicate_and_non_finite_stamps_are_dropped():
    s = make()
    for stream in ("rgb", "depth"):
        s.add(stream, 1.0, stream)
    assert s.add("pose", 1.0, "p") is not None
    assert s.add("rgb", 1.0, "again") is None
    assert s.add("rgb", float("nan"), "nan") is None
    assert s.dropped["stale"] == 1 and s.dropped["non_finite_stamp"] == 1


def test_queues_are_bounded():
    s = make(queue=3)
    for t in range(100):
        s.add("rgb", float(t), t)
    assert len(s._queues["rgb"]) == 3


TOPICS = {"rgb": "rgb/image", "depth": "depth/image", "info": "rgb/camera_info"}


def test_diagnosis_is_silent_when_every_stream_keeps_up():
    assert diagnose_pairing({"rgb": 50, "depth": 49, "info": 50}, 49, TOPICS) == []
    assert diagnose_pairing({"rgb": 3, "depth": 0, "info": 0}, 0, TOPICS) == []  # too few
    # one message short at a low rate: the window's edge, not a loss
    assert diagnose_pairing({"rgb": 6, "depth": 7, "info": 6}, 6, TOPICS) == []
    assert diagnose_pairing({"rgb": 7, "depth": 7, "info": 7}, 6, TOPICS) == []
    assert diagnose_pairing({"rgb": 7, "depth": 5, "info": 7}, 5, TOPICS) != []


def test_diagnosis_names_a_stopped_stream_and_one_that_never_arrived():
    causes = diagnose_pairing(
        {"rgb": 50, "depth": 0, "info": 0}, 0, TOPICS, ever={"rgb": 80, "depth": 30, "info": 0}
    )
    assert len(causes) == 2
    assert causes[0].startswith("depth/image stopped")
    assert causes[1].startswith("rgb/camera_info never arrived")


def test_diagnosis_points_at_the_transport_when_a_stream_loses_samples():
    (cause,) = diagnose_pairing({"rgb": 50, "depth": 31, "info": 50}, 30, TOPICS)
    assert cause.startswith("depth/image delivered 31 of 50") and "profile" in cause


def test_diagnosis_points_at_stamps_when_streams_arrive_but_do_not_pair():
    (cause,) = diagnose_pairing({"rgb": 50, "depth": 50, "info": 50}, 2, TOPICS)
    assert "sync.slop_s" in cause
