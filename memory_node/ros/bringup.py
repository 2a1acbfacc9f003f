"""Bring up scene_memory and policy_memory in one process, for machines without ``ros2 launch``.

Same nodes, same YAML files and the same options as ``launch/memory.launch.py``::

    memory_bringup [--namespace NS] [--use-sim-time] [--params-file F ...] [--log-level L]
                   [--no-autostart] [--nodes scene_memory policy_memory]

Without ``--params-file`` the package's ``config/scene_memory.yaml`` and
``config/policy_memory.yaml`` are used (from the installed share directory, or from the source
tree when run from a checkout).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import rclpy
from rclpy.node import Node

from memory_node.ros.environment import default_config_dir, use_large_data_profile
from memory_node.ros.policy_memory_node import PolicyMemoryNode
from memory_node.ros.scene_memory_node import SceneMemoryNode
from memory_node.ros.spin import spin_nodes

NODE_NAMES = ("scene_memory", "policy_memory")


def ros_args(
    params_files: Sequence[str],
    use_sim_time: bool,
    log_level: str,
    autostart: bool,
    overrides: Sequence[str] = (),
) -> list[str]:
    """Build the ``--ros-args`` list shared by every node of the process."""
    args = ["--ros-args"]
    for f in params_files:
        args += ["--params-file", f]
    for item in overrides:
        args += ["-p", item]
    args += ["-p", f"use_sim_time:={'true' if use_sim_time else 'false'}"]
    args += ["-p", f"autostart:={'true' if autostart else 'false'}"]
    args += ["--log-level", log_level]
    return args


def make_nodes(names: Sequence[str], namespace: str = "") -> list[Node]:
    """Create the named nodes (after ``rclpy.init``)."""
    makers = {"scene_memory": SceneMemoryNode, "policy_memory": PolicyMemoryNode}
    return [makers[n](namespace=namespace) for n in names]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line of memory_bringup."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespace", default="", help="Namespace of the nodes.")
    parser.add_argument("--use-sim-time", action="store_true", help="Follow /clock.")
    parser.add_argument(
        "--params-file",
        action="append",
        default=None,
        help="YAML parameter file (repeatable); default: the package's config/*.yaml.",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warn", "error", "fatal"]
    )
    parser.add_argument(
        "--no-autostart",
        action="store_true",
        help="Leave the lifecycle nodes unconfigured (a lifecycle manager drives them).",
    )
    parser.add_argument("--nodes", nargs="+", default=list(NODE_NAMES), choices=NODE_NAMES)
    from memory_node.viz.viewer_node import add_viewer_arguments

    add_viewer_arguments(parser)
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME:=VALUE",
        help="Parameter override for every node of the process (repeatable).",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``memory_bringup``."""
    args = parse_args(argv)
    files = args.params_file or [str(default_config_dir() / f"{name}.yaml") for name in args.nodes]
    for f in files:
        if not os.path.isfile(f):
            raise SystemExit(f"memory_bringup: parameter file not found: {f}")
    for item in args.param:
        if ":=" not in item:
            raise SystemExit(f"memory_bringup: -p expects NAME:=VALUE, got {item!r}")
    use_large_data_profile()
    from memory_node.viz.viewer_node import logger_from_args

    viewer = logger_from_args(args)  # refuses --viewer rerun without --rrd or --connect
    rclpy.init(
        args=ros_args(files, args.use_sim_time, args.log_level, not args.no_autostart, args.param)
    )
    nodes = make_nodes(args.nodes, args.namespace)
    if viewer is not None:  # a viewer node beside the memory: logs its topics to Rerun
        from memory_node.viz.viewer_node import RerunViewerNode

        nodes.append(RerunViewerNode(viewer, namespace=args.namespace))
    spin_nodes(nodes)


if __name__ == "__main__":
    main()
