"""The parameter trees of each node and the YAML files that list them.

``config/<node>.yaml`` and ``docs/parameters.md`` are generated from the same dataclasses the
nodes declare their parameters from (``python -m memory_node.ros.param_files --write``), and a
test checks that the files on disk still agree with the code.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from memory_node.core.config import ParamSpec, flatten

AUTOSTART = ParamSpec("autostart", True, "Configure and activate the node at start-up.")


def node_specs() -> dict[str, list[ParamSpec]]:
    """Every declared parameter of each node, in declaration order."""
    from memory_node.core.fleet_memory import FleetMemoryConfig
    from memory_node.core.policy_bank import PolicyBankConfig
    from memory_node.core.scene_memory import SceneMemoryConfig
    from memory_node.ros.fleet_memory_node import FleetNodeConfig
    from memory_node.ros.scene_memory_node import SceneNodeConfig
    from memory_sim.publisher_config import publisher_specs

    return {
        "scene_memory": [AUTOSTART, *flatten(SceneNodeConfig()), *flatten(SceneMemoryConfig())],
        "policy_memory": [AUTOSTART, *flatten(PolicyBankConfig())],
        "sim_publisher": publisher_specs(),
        "fleet_memory": [*flatten(FleetNodeConfig()), *flatten(FleetMemoryConfig())],
    }


def nest(specs: list[ParamSpec]) -> dict[str, Any]:
    """Dotted leaves -> nested dict, as ROS 2 parameter files write them."""
    root: dict[str, Any] = {}
    for spec in specs:
        parts = spec.name.split(".")
        target = root
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = spec.default
    return root


def flatten_yaml(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict -> dotted leaves (inverse of :func:`nest`)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten_yaml(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def render(node: str, specs: list[ParamSpec]) -> str:
    """YAML text of one node's parameter file, each leaf preceded by its description."""
    lines = [
        f"# Parameters of the {node} node, with their defaults (generated from the code by",
        "# `python -m memory_node.ros.param_files --write`; a test checks they agree).",
        f"{node}:",
        "  ros__parameters:",
    ]
    previous: list[str] = []
    for spec in specs:
        parts = spec.name.split(".")
        common = 0
        while common < min(len(previous), len(parts) - 1) and previous[common] == parts[common]:
            common += 1
        for depth in range(common, len(parts) - 1):
            lines.append("    " + "  " * depth + f"{parts[depth]}:")
        indent = "    " + "  " * (len(parts) - 1)
        text = spec.description.rstrip()
        if text and not text.endswith("."):
            text += "."
        if spec.min_value is not None or spec.max_value is not None:
            text += f" Range: [{spec.min_value}, {spec.max_value}]."
        lines.append(f"{indent}# {text}")
        value = yaml.safe_dump(spec.default, default_flow_style=True).strip()
        value = value.removesuffix("\n...").removesuffix("...").strip()
        lines.append(f"{indent}{parts[-1]}: {value}")
        previous = parts[:-1]
    return "\n".join(lines) + "\n"


def markdown(node: str, specs: list[ParamSpec]) -> str:
    """Return a markdown table of the parameters of one node."""
    lines = [
        f"## `{node}`",
        "",
        "| parameter | default | range / choices | description |",
        "|---|---|---|---|",
    ]
    for spec in specs:
        if spec.choices:
            bounds = ", ".join(spec.choices)
        elif spec.min_value is not None or spec.max_value is not None:
            lo = "" if spec.min_value is None else f"{spec.min_value:g}"
            hi = "" if spec.max_value is None else f"{spec.max_value:g}"
            bounds = f"[{lo}, {hi}]"
        else:
            bounds = ""
        default = json.dumps(spec.default)
        text = " ".join(spec.description.replace("|", "/").split())
        lines.append(f"| `{spec.name}` | `{default}` | {bounds} | {text} |")
    return "\n".join(lines) + "\n"


def parameters_page() -> str:
    """Return ``docs/parameters.md``: the generated parameter tables of every node."""
    head = [
        "# Parameters",
        "",
        "Every parameter of every node, with its default, range and description. Generated from",
        "the code by `python -m memory_node.ros.param_files --write` (`make config`), which also",
        "writes `config/<node>.yaml`; a test fails when either drifts from the code.",
        "",
    ]
    tables = "\n".join(markdown(node, specs) for node, specs in node_specs().items())
    return "\n".join(head) + "\n" + tables


def main() -> None:
    """Print or write config/<node>.yaml and docs/parameters.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true", help="Print markdown tables.")
    parser.add_argument(
        "--write", action="store_true", help="Write the files instead of printing."
    )
    parser.add_argument("--dir", default=str(Path(__file__).resolve().parents[2] / "config"))
    args = parser.parse_args()
    for node, specs in node_specs().items():
        if args.markdown:
            print(markdown(node, specs))
            continue
        text = render(node, specs)
        if args.write:
            path = Path(args.dir) / f"{node}.yaml"
            path.write_text(text)
            print(f"wrote {path}")
        else:
            print(text)
    if args.write and not args.markdown:
        page = Path(args.dir).parent / "docs" / "parameters.md"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(parameters_page())
        print(f"wrote {page}")


if __name__ == "__main__":
    main()
