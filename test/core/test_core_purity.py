"""memory_node/core must import without ROS: no rclpy, no message or service packages."""

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "memory_node" / "core"
FORBIDDEN_EXACT = {
    "rclpy",
    "memory_interfaces",
    "launch",
    "launch_ros",
    "tf2_ros",
    "rosidl_runtime_py",
}
FORBIDDEN_SUFFIXES = ("_msgs", "_srvs", "_interfaces")


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def forbidden(module: str) -> bool:
    top = module.split(".")[0]
    return top in FORBIDDEN_EXACT or top.endswith(FORBIDDEN_SUFFIXES)


def test_checker_catches_forbidden_imports(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import rclpy\nfrom sensor_msgs.msg import Image\nfrom std_srvs.srv import Trigger\n"
    )
    assert [m for m in imported_modules(bad) if forbidden(m)] == [
        "rclpy",
        "sensor_msgs.msg",
        "std_srvs.srv",
    ]


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: p.name)
def test_core_module_has_no_ros_imports(path):
    bad = [m for m in imported_modules(path) if forbidden(m)]
    assert not bad, f"{path.relative_to(CORE.parent.parent)} imports {bad}"
