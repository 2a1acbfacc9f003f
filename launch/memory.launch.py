"""Launch scene_memory and policy_memory (ros2 launch memory_node memory.launch.py).

Arguments: namespace, use_sim_time, params_file (one file may hold both nodes' sections; the
default is the package's config/scene_memory.yaml + config/policy_memory.yaml), log_level,
autostart (configure and activate the lifecycle nodes at start-up), with_sim (also start the
built-in simulator publisher), rviz (also start RViz2 with the package's rviz/memory.rviz).
Every process gets the package's Fast DDS large-data profile (FASTRTPS_DEFAULT_PROFILES_FILE)
unless the environment already names one; the camera driver's process needs it too (see
config/fastdds_large_data.xml).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PythonExpression
from launch_ros.actions import LifecycleNode, Node


def generate_launch_description() -> LaunchDescription:
    """Describe the two memory nodes (and optionally the simulator) with their arguments."""
    share = get_package_share_directory("memory_node")
    namespace = LaunchConfiguration("namespace")
    use_sim_time = LaunchConfiguration("use_sim_time")
    params_file = LaunchConfiguration("params_file")
    log_level = LaunchConfiguration("log_level")
    autostart = LaunchConfiguration("autostart")

    def params(node: str) -> list:
        default = os.path.join(share, "config", f"{node}.yaml")
        chosen = PythonExpression(["'", params_file, "' or '", default, "'"])
        return [chosen, {"use_sim_time": use_sim_time, "autostart": autostart}]

    common = {
        "package": "memory_node",
        "namespace": namespace,
        "output": "screen",
        "arguments": ["--ros-args", "--log-level", log_level],
    }
    profile = os.path.join(share, "config", "fastdds_large_data.xml")
    return LaunchDescription(
        [
            SetEnvironmentVariable(
                "FASTRTPS_DEFAULT_PROFILES_FILE",
                EnvironmentVariable("FASTRTPS_DEFAULT_PROFILES_FILE", default_value=profile),
            ),
            DeclareLaunchArgument("namespace", default_value="", description="Node namespace."),
            DeclareLaunchArgument(
                "use_sim_time", default_value="false", description="Use /clock (simulation)."
            ),
            DeclareLaunchArgument(
                "params_file",
                default_value="",
                description="YAML parameter file for both nodes ('' = the package's config/).",
            ),
            DeclareLaunchArgument(
                "log_level", default_value="info", description="debug, info, warn, error."
            ),
            DeclareLaunchArgument(
                "autostart",
                default_value="true",
                description="Configure and activate the lifecycle nodes at start-up.",
            ),
            DeclareLaunchArgument(
                "with_sim",
                default_value="false",
                description="Also run the built-in simulator publisher (sim_publisher).",
            ),
            LifecycleNode(
                executable="scene_memory",
                name="scene_memory",
                parameters=params("scene_memory"),
                **common,
            ),
            LifecycleNode(
                executable="policy_memory",
                name="policy_memory",
                parameters=params("policy_memory"),
                **common,
            ),
            Node(
                executable="sim_publisher",
                name="sim_publisher",
                parameters=[os.path.join(share, "config", "sim_publisher.yaml")],
                condition=IfCondition(LaunchConfiguration("with_sim")),
                **common,
            ),
            DeclareLaunchArgument(
                "rviz",
                default_value="false",
                description="Also start RViz2 showing the memory (rviz/memory.rviz).",
            ),
            Node(
                package="rviz2",
                executable="rviz2",
                name="rviz2",
                arguments=["-d", os.path.join(share, "rviz", "memory.rviz")],
                parameters=[{"use_sim_time": use_sim_time}],
                condition=IfCondition(LaunchConfiguration("rviz")),
                output="screen",
            ),
        ]
    )
