"""config/<node>.yaml and docs/parameters.md list every declared parameter with its default."""

from pathlib import Path

import pytest
import yaml

from memory_node.ros.param_files import flatten_yaml, node_specs, render

CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.mark.parametrize("node", ["scene_memory", "policy_memory", "sim_publisher"])
def test_yaml_agrees_with_declared_parameters(node):
    specs = node_specs()[node]
    on_disk = flatten_yaml(
        yaml.safe_load((CONFIG / f"{node}.yaml").read_text())[node]["ros__parameters"]
    )
    declared = {s.name: s.default for s in specs}
    assert sorted(on_disk) == sorted(declared), "run `make config` to regenerate config/*.yaml"
    for name, default in declared.items():
        assert on_disk[name] == default and type(on_disk[name]) is type(default), name


def test_rendered_yaml_round_trips():
    for node, specs in node_specs().items():
        parsed = yaml.safe_load(render(node, specs))[node]["ros__parameters"]
        assert flatten_yaml(parsed) == {s.name: s.default for s in specs}


def test_every_parameter_has_a_description():
    for specs in node_specs().values():
        for s in specs:
            assert len(s.description) > 10, s.name


def test_parameters_page_lists_every_parameter_as_generated():
    from memory_node.ros.param_files import parameters_page

    page = (CONFIG.parent / "docs" / "parameters.md").read_text()
    assert page == parameters_page(), "run `make config` to regenerate docs/parameters.md"
    for specs in node_specs().values():
        for s in specs:
            assert f"| `{s.name}` |" in page, s.name
