"""Declare a node's parameters from a core config dataclass tree, and read them back.

Every leaf of the tree (see :mod:`memory_node.core.config`) becomes one ROS parameter with the
dotted leaf name, a ParameterDescriptor carrying its description and range, and the dataclass
default. ``config/<node>.yaml`` lists the same leaves with the same defaults.
"""

from __future__ import annotations

import warnings
from typing import Any, TypeVar

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

from memory_node.core.config import ParamSpec, check_value, flatten, unflatten

T = TypeVar("T")


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """Build the ROS descriptor of one leaf parameter (description, range, choices)."""
    text = spec.description
    if spec.choices:
        text += f" One of: {', '.join(spec.choices)}."
    desc = ParameterDescriptor(description=text)
    value = spec.default
    if isinstance(value, bool) or (spec.min_value is None and spec.max_value is None):
        return desc
    lo = spec.min_value
    hi = spec.max_value
    if isinstance(value, int):
        desc.integer_range = [
            IntegerRange(
                from_value=int(lo if lo is not None else -(2**62)),
                to_value=int(hi if hi is not None else 2**62),
                step=0,
            )
        ]
    elif isinstance(value, float):
        desc.floating_point_range = [
            FloatingPointRange(
                from_value=float(lo if lo is not None else -1e300),
                to_value=float(hi if hi is not None else 1e300),
                step=0.0,
            )
        ]
    return desc


def declare_config(node: Node, cls: type[T], prefix: str = "") -> T:
    """Declare every leaf of ``cls`` on ``node`` (names prefixed by ``prefix``) and build it.

    Values come from the parameter overrides (YAML file, command line, launch); leaves not
    overridden keep the dataclass default. Raises ValueError for values outside their range
    or choices, naming the parameter.
    """
    specs = flatten(cls())
    values: dict[str, Any] = {}
    for spec in specs:
        param = node.declare_parameter(prefix + spec.name, spec.default, descriptor(spec))
        values[spec.name] = param.value
    renamed = getattr(cls, "renamed_params", None)
    for old, new in (renamed() if renamed is not None else {}).items():
        # an old name, declared without a value: set only when a file or override gives one
        use = f"use {prefix + new}" if new else "no longer used"
        desc = ParameterDescriptor(
            description=f"Deprecated (accepted for one release): {use}.",
            dynamic_typing=True,
        )
        value = node.declare_parameter(prefix + old, None, desc).value
        if value is None:
            continue
        node.get_logger().warning(
            f"parameter {prefix + old} is deprecated (accepted for one release): {use}"
        )
        values[old] = value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # logged above, once per name
        return unflatten(cls, values)


def reject_runtime_changes(node: Node, specs: list[ParamSpec], prefix: str = "") -> None:
    """Refuse run-time changes of these parameters that break their range or choices.

    Parameters are read at configure time; a valid run-time change is accepted and takes effect
    at the next configure (the callback says so in its reason).
    """
    by_name = {prefix + s.name: s for s in specs}

    def _check(params: list[Parameter]) -> SetParametersResult:
        for p in params:
            spec = by_name.get(p.name)
            if spec is None:
                continue
            try:
                check_value(spec, p.value)
            except ValueError as err:
                return SetParametersResult(successful=False, reason=str(err))
        return SetParametersResult(
            successful=True, reason="takes effect at the next configure transition"
        )

    node.add_on_set_parameters_callback(_check)
