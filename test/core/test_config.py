"""Config dataclasses: flattening to dotted parameters and rebuilding with range checks."""

from dataclasses import dataclass, field

import pytest

from memory_node.core.config import flatten, param, unflatten


@dataclass
class Inner:
    voxel_size_m: float = param(0.05, "Voxel edge.", min_value=0.001, max_value=1.0)
    mode: str = param("given", "Mode.", choices=("given", "geometric"))


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    k: int = param(10, "Count.", min_value=1)


def test_flatten_lists_dotted_leaves_with_metadata():
    specs = flatten(Outer())
    assert [s.name for s in specs] == ["inner.voxel_size_m", "inner.mode", "k"]
    assert specs[0].default == 0.05 and specs[0].min_value == 0.001
    assert specs[1].choices == ("given", "geometric")


def test_unflatten_sets_values_and_keeps_defaults():
    cfg = unflatten(Outer, {"inner.voxel_size_m": 0.1, "k": 3})
    assert cfg.inner.voxel_size_m == 0.1 and cfg.k == 3 and cfg.inner.mode == "given"
    assert isinstance(unflatten(Outer, {"inner.voxel_size_m": 1}).inner.voxel_size_m, float)


@pytest.mark.parametrize(
    "values, match",
    [
        ({"inner.voxel_size_m": 0.0}, "below the minimum"),
        ({"inner.voxel_size_m": 2.0}, "above the maximum"),
        ({"inner.mode": "magic"}, "not one of"),
        ({"nope": 1}, "unknown parameter"),
    ],
)
def test_unflatten_refuses_bad_values(values, match):
    with pytest.raises(ValueError, match=match):
        unflatten(Outer, values)


def test_field_without_param_is_refused():
    @dataclass
    class Bad:
        x: int = 1

    with pytest.raises(TypeError, match="param"):
        flatten(Bad())
