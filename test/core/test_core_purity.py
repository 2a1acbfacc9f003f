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


ROOTS = {
    "memory_node": CORE.parent,
    "memory_sim": CORE.parents[1] / "sim" / "memory_sim",
}


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Return every node of ``tree`` except those under ``if TYPE_CHECKING:`` (never run)."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return out


def import_graph(roots: dict[str, Path]) -> dict[str, set[str]]:
    """Map each module to the package modules it imports (anywhere in the file, lazily too)."""
    files = {}
    for pkg, root in roots.items():
        for f in root.rglob("*.py"):
            parts = [pkg, *f.relative_to(root).with_suffix("").parts]
            files[".".join(parts).removesuffix(".__init__")] = f
    graph: dict[str, set[str]] = {}
    for name, f in files.items():
        deps: set[str] = set()
        for node in runtime_nodes(ast.parse(f.read_text(), filename=str(f))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                cands = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                cands = [a.name for a in node.names]
            else:
                continue
            deps |= {c for c in cands if c in files and c != name}
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# Known cycle outside this test's first scope, through lazy imports inside functions (the fleet
# store and its backends); to be broken by moving the shared types into storage.base.
KNOWN_CYCLES = [
    [
        "memory_node.core.fleet",
        "memory_node.core.storage",
        "memory_node.core.storage.base",
        "memory_node.core.storage.postgres",
        "memory_node.core.storage.sqlite",
    ]
]


def test_no_module_imports_itself_through_others():
    """E.g. bringup importing the nodes while the nodes import bringup, lazily or not."""
    assert [c for c in cycles(import_graph(ROOTS)) if c not in KNOWN_CYCLES] == []
