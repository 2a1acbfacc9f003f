"""ROS 2 node ``sim_publisher``: plays an episode of the built-in simulator as camera topics.

Publishes, every simulated frame and all with one shared header stamp (sim time):

* ``rgb/image`` (sensor_msgs/Image rgb8), ``depth/image`` (32FC1, metres, 0 = no reading),
  ``rgb/camera_info`` (plumb_bob, no distortion), in the camera optical frame;
* ``camera/pose`` (geometry_msgs/PoseStamped, frame ``map``): the optical frame in the map;
* ``instance/image`` (32SC1, 0 = none) and ``instance/labels`` (memory_interfaces/InstanceLabels);
* ``/clock`` (rosgraph_msgs/Clock) for nodes running with ``use_sim_time``.

Camera streams and ``/clock`` are published reliable: that matches every subscriber, and
reliable subscribers get every frame. Parameters: the node's own (``episode_path``,
``realtime_factor``...), the simulator's (``rate_hz``, ``seed``, ``camera.*``, ``noise.*``)
and the procedural house's (``procedural.*``, used when no episode file is given: endless
coverage tours).

The simulator runs in the timer callback (single-threaded executor is enough: there are no
services). When an episode ends its ground truth is written to ``ground_truth_path`` (if set);
with ``loop`` the episode restarts and sim time keeps increasing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image

from memory_interfaces.msg import InstanceLabels
from memory_node.core.config import flatten
from memory_node.core.types import Frame
from memory_node.ros import conversions as conv
from memory_node.ros.environment import use_large_data_profile
from memory_node.ros.params import declare_config
from memory_sim.episode import EpisodeRunner, load_episode, parse_episode
from memory_sim.procedural import ProceduralConfig
from memory_sim.publisher_config import SimPublisherConfig, publisher_specs
from memory_sim.simulator import SimConfig

__all__ = ["SimPublisher", "SimPublisherConfig", "main", "publisher_specs"]


def default_episode_text(procedural: ProceduralConfig) -> str:
    """Return the YAML of the default episode: one coverage tour of the procedural house."""
    args = ", ".join(f"{s.name}: {s.default}" for s in flatten(procedural))
    return (
        "name: procedural_tour\n"
        f"scene:\n  procedural: {{{args}}}\n"
        "segments:\n  - {name: tour, coverage: {turns: 1}}\n"
    )


class SimPublisher(Node):
    """Steps the simulator on a timer and publishes each frame; see the module docstring."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__("sim_publisher", **kwargs)  # type: ignore[arg-type]
        self.config = declare_config(self, SimPublisherConfig)
        self.sim_config = declare_config(self, SimConfig)
        self.procedural = declare_config(self, ProceduralConfig, "procedural.")
        if self.config.episode_path:
            self.episode = load_episode(self.config.episode_path)
        else:
            self.episode = parse_episode(default_episode_text(self.procedural), "<procedural>")
        self.runner = self._new_runner()
        self.time_offset = 0.0
        self.episodes_done = 0
        self.frames_published = 0
        self.finished = False
        # Reliable publishers match both best-effort and reliable subscribers; a subscriber that
        # asks for reliable delivery (scene_memory with inputs.qos_reliability:=reliable) then
        # gets every frame instead of losing fragments of large images.
        sensor = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.pub_rgb = self.create_publisher(Image, "rgb/image", sensor)
        self.pub_depth = self.create_publisher(Image, "depth/image", sensor)
        self.pub_info = self.create_publisher(CameraInfo, "rgb/camera_info", sensor)
        self.pub_pose = self.create_publisher(PoseStamped, "camera/pose", sensor)
        self.pub_instance = self.create_publisher(Image, "instance/image", sensor)
        self.pub_labels = self.create_publisher(InstanceLabels, "instance/labels", sensor)
        self.publishers_by_topic = {
            "rgb/image": self.pub_rgb,
            "depth/image": self.pub_depth,
            "rgb/camera_info": self.pub_info,
            "camera/pose": self.pub_pose,
            "instance/image": self.pub_instance,
            "instance/labels": self.pub_labels,
        }
        self.pub_clock = self.create_publisher(
            Clock, "/clock", QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        )
        rate = self.sim_config.rate_hz
        factor = self.config.realtime_factor
        period = 1.0 / (rate * factor) if factor > 0 else 0.001
        self.timer = self.create_timer(period, self._on_timer)
        self.get_logger().info(
            f"playing {self.episode.name} ({self.runner.frame_count} frames at {rate} Hz, "
            f"{self.sim_config.camera.width_px}x{self.sim_config.camera.height_px}, "
            f"noise {'on' if self.sim_config.noise.enabled else 'off'}), "
            f"realtime factor {factor}"
        )

    def _new_runner(self) -> EpisodeRunner:
        """Return a fresh runner of the episode (the scene back in its initial state)."""
        return EpisodeRunner(
            self.episode, self.sim_config, keep_frame_truth=bool(self.config.ground_truth_path)
        )

    def _on_timer(self) -> None:
        """Render and publish one frame; handle the end of the episode."""
        if self.finished:
            return
        if self.frames_published == 0 and self.episodes_done == 0 and not self._subscribed():
            return
        if self.runner.sim.frame_index >= self.runner.frame_count:
            self._end_episode()
            if self.finished:
                return
        step = self.runner.step()
        self.publish_frame(step.frame, self.time_offset + step.frame.stamp)

    def _subscribed(self) -> bool:
        """Tell whether the camera topics have enough subscribers to start the episode."""
        need = self.config.wait_for_subscribers
        pubs = (self.pub_depth, self.pub_pose, self.pub_info)
        if need == 0 or all(p.get_subscription_count() >= need for p in pubs):
            return True
        self.get_logger().info(
            f"waiting for {need} subscriber(s) on depth/image, camera/pose, rgb/camera_info",
            throttle_duration_sec=5.0,
        )
        return False

    def _end_episode(self) -> None:
        """Save ground truth, then restart (loop) or stop publishing."""
        self.episodes_done += 1
        if self.config.ground_truth_path:
            self.runner.save_ground_truth(self.config.ground_truth_path)
            self.get_logger().info(f"ground truth written to {self.config.ground_truth_path}")
        self.time_offset += self.runner.frame_count * self.runner.sim.dt
        self.runner.close()
        if not self.config.loop:
            self.finished = True
            self.timer.cancel()
            self.get_logger().info(f"episode {self.episode.name} finished")
            return
        self.runner = self._new_runner()
        self.get_logger().info(f"episode {self.episode.name} restarts at {self.time_offset:.2f} s")

    def publish_frame(self, frame: Frame, stamp: float) -> None:
        """Publish every topic of one frame with the header stamp ``stamp`` (seconds)."""
        if not math.isfinite(stamp) or stamp < 0 or not np.all(np.isfinite(frame.map_T_camera)):
            self.get_logger().error(
                f"frame at {stamp:.3f} s not published: non-finite pose or stamp"
            )
            return
        if self.config.publish_clock:
            self.pub_clock.publish(Clock(clock=conv.sec_to_time(stamp)))
        messages = conv.frame_to_messages(
            frame,
            stamp,
            self.config.map_frame_id,
            self.config.camera_frame_id,
            self.config.publish_instances,
        )
        for topic, msg in messages:
            self.publishers_by_topic[topic].publish(msg)
        self.frames_published += 1

    def destroy_node(self) -> None:
        """Release the simulator, then the node."""
        self.runner.close()
        super().destroy_node()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the sim_publisher node until Ctrl-C (console script ``sim_publisher``)."""
    use_large_data_profile()
    rclpy.init(args=list(argv) if argv is not None else None)
    node = None
    try:
        node = SimPublisher()
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == "__main__":
    main()
