"""ament_python build of memory_node (the core, the ROS adapters and the built-in simulator)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "memory_node"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=["memory_node", "memory_node.*"])
    + find_packages(where="sim", include=["memory_sim", "memory_sim.*"]),
    package_dir={"memory_sim": "sim/memory_sim"},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
        (f"share/{PACKAGE}/episodes", glob("sim/episodes/*.yaml")),
        (f"share/{PACKAGE}/docs", ["docs/export-schema.json"]),
        (f"share/{PACKAGE}/rviz", glob("rviz/*.rviz")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="memory_node maintainers",
    maintainer_email="maintainers@memory-node.dev",
    description="Long-term scene graph, short-term object-state and policy memory for ROS 2.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "scene_memory = memory_node.ros.scene_memory_node:main",
            "policy_memory = memory_node.ros.policy_memory_node:main",
            "memory_bringup = memory_node.ros.bringup:main",
            "sim_publisher = memory_sim.ros_publisher:main",
            "memory_demo = memory_node.demo:main",
            "fleet_memory = memory_node.ros.fleet_memory_node:main",
            "fleet_demo = memory_node.fleet_demo:main",
            "memory_export = memory_node.tools.export:entry_point",
            "memory_replay = memory_node.tools.replay:entry_point",
            "memory_viewer = memory_node.viz.viewer_node:main",
        ],
    },
)
