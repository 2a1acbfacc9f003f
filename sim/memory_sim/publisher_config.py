"""Parameters of the ``sim_publisher`` node, without ROS (read by the config-file generator).

:mod:`memory_sim.ros_publisher` declares them on the node; ``memory_node.ros.param_files``
lists them in ``config/sim_publisher.yaml`` through this module, so it never imports the node
(which imports ``memory_node.ros``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from memory_node.core.config import ParamSpec, flatten, param
from memory_sim.procedural import ProceduralConfig
from memory_sim.simulator import SimConfig


@dataclass
class SimPublisherConfig:
    """Parameters of the sim_publisher node itself (the simulator's are in SimConfig)."""

    episode_path: str = param(
        "", "episode YAML to play; empty = endless coverage tours of the procedural house"
    )
    loop: bool = param(True, "restart the episode when it ends (sim time keeps increasing)")
    realtime_factor: float = param(
        1.0, "sim seconds per wall-clock second; 0 = as fast as the renderer goes", min_value=0.0
    )
    map_frame_id: str = param("map", "frame of camera/pose")
    camera_frame_id: str = param("camera_optical_frame", "frame of the images and camera_info")
    ground_truth_path: str = param(
        "", "write the episode's ground truth JSON here when it ends; empty = do not"
    )
    publish_instances: bool = param(True, "publish instance/image and instance/labels")
    publish_clock: bool = param(True, "publish /clock with the sim time of each frame")
    wait_for_subscribers: int = param(
        1,
        "hold the first frame until depth/image, camera/pose and rgb/camera_info each have at "
        "least this many subscribers (so no frame is lost while DDS discovery completes); 0 = "
        "start at once",
        min_value=0,
        max_value=100,
    )


def publisher_specs() -> list[ParamSpec]:
    """Return every parameter the node declares, in declaration order (for config files)."""
    procedural = [
        dataclasses.replace(s, name="procedural." + s.name) for s in flatten(ProceduralConfig())
    ]
    return [*flatten(SimPublisherConfig()), *flatten(SimConfig()), *procedural]
