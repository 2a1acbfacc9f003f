"""The task agent over ROS: the real scene_memory node's services and camera topics.

A small house's memory is saved by the core, loaded into the node through ``~/load``; the agent
then plans and acts through ``~/query_objects``, ``~/get_changes`` and ``~/get_scene_graph`` and
publishes what it sees on the camera topics. Its answers must equal the in-core agent's.
"""

from __future__ import annotations

import pytest
from rclpy.parameter import Parameter

from memory_interfaces.srv import LoadMemory
from memory_node.ros.client import MemoryClient
from memory_node.ros.scene_memory_node import SceneMemoryNode
from memory_node.tasks.agent import Agent
from memory_node.tasks.ros_services import RosServices
from memory_node.tasks.score import score
from memory_node.tasks.suite import SuiteConfig, build_scenario, fresh_memory
from memory_node.tasks.world import WorldConfig
from memory_sim.procedural import ProceduralConfig


@pytest.fixture(scope="module")
def scenario():
    house = ProceduralConfig(rooms_x=2, rooms_y=1, objects_per_room=4)
    suite = SuiteConfig(moves=1, removals=1, additions=1, state_changes=1, return_share=1.0)
    s = build_scenario(7, WorldConfig(spin_frames=4), suite, house=house)
    yield s
    s.world.close()


def test_agent_over_ros_answers_like_the_in_core_agent(ros, scenario, tmp_path):
    path = str(tmp_path / "memory.db")
    fresh_memory(scenario, "full").save(path)
    ros.add(
        SceneMemoryNode(
            context=ros.context,
            parameter_overrides=[
                Parameter("depth.pixel_stride", value=1),
                Parameter("features.mode", value=scenario.memory_config.features.mode),
            ],
        )
    )
    loaded = ros.call(LoadMemory, "/scene_memory/load", LoadMemory.Request(path=path))
    assert loaded.success, loaded.message
    client = MemoryClient(context=ros.context, node_name="task_agent")
    try:
        services = RosServices(client)
        over_ros = Agent(scenario, "full_memory", services=services)
        in_core = Agent(scenario, "full_memory")
        answered = [
            t for t in scenario.tasks if t.kind in ("is_open", "where_last", "what_changed")
        ]
        assert answered
        frames = 0
        for task in answered[:3]:
            a = score(task, over_ros.run(task), scenario.world)
            frames += a.frames
            b = score(task, in_core.run(task), scenario.world)
            assert (a.answer, a.success) == (b.answer, b.success), task.text
            assert a.service_calls >= 3 and a.prompt_tokens > 0
        assert services.calls["query_objects"] >= 1 and services.calls["get_scene_graph"] >= 1
        assert services.frames_published == frames  # every frame seen went to the topics
    finally:
        client.close()
