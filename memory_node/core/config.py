"""Typed configuration dataclasses that double as the nodes' parameter declarations.

Every component keeps its own small config dataclass whose fields are made with :func:`param`,
which records a description, a unit-bearing name and an optional range. The ROS node walks a
config tree with :func:`flatten` to declare one parameter per leaf (dotted names, e.g.
``mapping.voxel_size_m``), and rebuilds the tree from parameter values with :func:`unflatten`.
``config/<node>.yaml`` lists every leaf with the same default; a test checks that they agree.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class ParamSpec:
    """Description of one leaf parameter."""

    name: str
    default: Any
    description: str
    min_value: float | None = None
    max_value: float | None = None
    choices: tuple[str, ...] | None = None


def param(
    default: Any,
    description: str,
    *,
    min_value: float | None = None,
    max_value: float | None = None,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """Make a dataclass field carrying a parameter description and optional range or choices."""
    meta = {
        "description": description,
        "min_value": min_value,
        "max_value": max_value,
        "choices": choices,
    }
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def flatten(config: Any, prefix: str = "") -> list[ParamSpec]:
    """List the leaf parameters of a config dataclass tree, with dotted names, in field order."""
    specs: list[ParamSpec] = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            specs.extend(flatten(value, name + "."))
            continue
        if "description" not in f.metadata:
            raise TypeError(f"config field {name} was not declared with param()")
        specs.append(
            ParamSpec(
                name=name,
                default=value,
                description=f.metadata["description"],
                min_value=f.metadata.get("min_value"),
                max_value=f.metadata.get("max_value"),
                choices=f.metadata.get("choices"),
            )
        )
    return specs


def unflatten(cls: type[T], values: dict[str, Any]) -> T:
    """Build a config tree of type ``cls`` from dotted leaf values; missing leaves keep defaults.

    A root class may rename parameters: its ``renamed_param(name, value, config)`` returns the
    (new name, value) of an old name ("" as the name: no longer used, ignored), or None; the old
    name is then accepted with a :class:`DeprecationWarning`.

    Raises:
        ValueError: a value is outside its declared range or choices, or a name is unknown.
    """
    config = cls()
    known = {spec.name: spec for spec in flatten(config)}
    renamed = getattr(cls, "renamed_param", None)
    for name, value in values.items():
        spec = known.get(name)
        if spec is None and renamed is not None:
            new = renamed(name, value, config)
            if new is not None:
                warnings.warn(
                    f"parameter {name!r} is deprecated (accepted for one release): use {new[0]!r}",
                    DeprecationWarning,
                    stacklevel=2,
                )
                name, value = new
                if not name:
                    continue  # a parameter no longer used
                spec = known.get(name)
        if spec is None:
            raise ValueError(f"unknown parameter {name!r}")
        check_value(spec, value)
        target: Any = config
        parts = name.split(".")
        for part in parts[:-1]:
            target = getattr(target, part)
        default = getattr(target, parts[-1])
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        setattr(target, parts[-1], value)
    return config


def check_value(spec: ParamSpec, value: Any) -> None:
    """Raise ValueError when ``value`` violates the range or choices of ``spec``."""
    if spec.choices is not None and value not in spec.choices:
        raise ValueError(f"{spec.name}={value!r} is not one of {list(spec.choices)}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if spec.min_value is not None and value < spec.min_value:
            raise ValueError(f"{spec.name}={value!r} is below the minimum {spec.min_value}")
        if spec.max_value is not None and value > spec.max_value:
            raise ValueError(f"{spec.name}={value!r} is above the maximum {spec.max_value}")
