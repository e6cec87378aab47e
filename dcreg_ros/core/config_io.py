"""Typed configuration dataclasses <-> plain dictionaries / YAML, with validation.

Every config section is a frozen dataclass whose fields carry a default, a unit and a check in
their metadata. ``from_dict`` rejects unknown keys and bad values with a message that names the
parameter, so a typo in a YAML file or a ROS parameter fails loudly instead of being ignored.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Callable, TypeVar, get_type_hints

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value or key is invalid."""


def param(default: Any, doc: str, check: Callable[[Any], bool] | None = None, rule: str = "") -> Any:
    """A dataclass field with a description and an optional validity check."""
    return dataclasses.field(default=default, metadata={"doc": doc, "check": check, "rule": rule})


def section(factory: Callable[[], Any], doc: str) -> Any:
    """A nested config section."""
    return dataclasses.field(default_factory=factory, metadata={"doc": doc})


def positive(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def non_negative(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x >= 0


def one_of(*choices: str) -> Callable[[Any], bool]:
    return lambda x: x in choices


def _coerce(value: Any, annotation: Any, name: str) -> Any:
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name}: expected true/false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
        return int(value)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}: expected a string, got {value!r}")
        return value
    if annotation == list[float] or annotation == tuple[float, ...]:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"{name}: expected a list of numbers, got {value!r}")
        return tuple(float(v) for v in value)
    return value


def validate(cfg: Any, prefix: str = "") -> None:
    """Run every field check of a config tree; raise ConfigError naming the first bad field."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            validate(value, name + ".")
            continue
        check = f.metadata.get("check")
        if check is not None and not check(value):
            rule = f.metadata.get("rule") or "invalid value"
            raise ConfigError(f"{name} = {value!r}: {rule}")
    post = getattr(cfg, "check", None)
    if callable(post):
        post()


def from_dict(cls: type[T], data: dict | None, prefix: str = "", base: Any = None) -> T:
    """Build config ``cls`` from a (possibly partial, nested) dictionary, then validate it.

    Keys left out keep their defaults; a partial section keeps the defaults of its owner (e.g.
    the odometry's ``degeneracy`` section defaults to ``dcreg_prior``, not to the class's own).
    ``base`` is the instance that supplies them (default: ``cls()``)."""
    data = dict(data or {})
    hints = get_type_hints(cls)
    kwargs = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in data.items():
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"unknown parameter '{prefix}{key}' (known here: {known})")
        annotation = hints[key]
        if dataclasses.is_dataclass(annotation):
            if not isinstance(value, dict):
                raise ConfigError(f"{prefix}{key}: expected a section (mapping), got {value!r}")
            section_default = getattr(base, key) if base is not None else _field_default(fields[key])
            kwargs[key] = from_dict(annotation, value, f"{prefix}{key}.", section_default)
        else:
            kwargs[key] = _coerce(value, annotation, f"{prefix}{key}")
    cfg = cls(**kwargs) if base is None else dataclasses.replace(base, **kwargs)
    if not prefix:
        validate(cfg)
    return cfg


def _field_default(f: dataclasses.Field) -> Any:
    """The default value of a dataclass field (None when it has none)."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def to_dict(cfg: Any) -> dict:
    """Nested plain dictionary of a config (tuples become lists)."""
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out[f.name] = to_dict(value)
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        else:
            out[f.name] = value
    return out


def flatten(cfg: Any, prefix: str = "") -> dict[str, tuple[Any, str]]:
    """{'section.name': (value, description)} for every leaf parameter (ROS parameter names)."""
    out: dict[str, tuple[Any, str]] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out.update(flatten(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = (value, f.metadata.get("doc", ""))
    return out


def unflatten(values: dict[str, Any]) -> dict:
    """Inverse of :func:`flatten` for plain values: {'a.b': 1} -> {'a': {'b': 1}}."""
    out: dict = {}
    for key, value in values.items():
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def replace(cfg: T, **changes: Any) -> T:
    """Copy of ``cfg`` with fields changed, validated."""
    new = dataclasses.replace(cfg, **changes)
    validate(new)
    return new


def _yaml_problem(exc: Exception) -> str:
    """'line 3, column 1: expected ...' (1-based) instead of PyYAML's multi-line report."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return " ".join(f"{where}{problem}".split())


def load_yaml(cls: type[T], path: str | Path, key: str | None = None) -> T:
    """Load config ``cls`` from a YAML file.

    Accepts a plain mapping, or a ROS 2 parameter file (``node: ros__parameters: {...}``) whose
    parameters are the flattened names; ``key`` selects a sub-mapping when given.
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {_yaml_problem(exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must contain a mapping")
    if key is not None and key in data:
        data = data[key]
    if len(data) == 1:
        (only,) = data.values()
        if isinstance(only, dict) and "ros__parameters" in only:
            params = dict(only["ros__parameters"])
            names = {name for name in flatten(cls())}
            data = unflatten({k: v for k, v in _flatten_plain(params).items() if k in names})
    return from_dict(cls, data)


def _flatten_plain(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten_plain(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def dump_yaml(cfg: Any) -> str:
    """YAML text of a config."""
    import yaml

    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def annotated_yaml(cfg: Any, root: str, header: str = "") -> str:
    """YAML of every parameter under ``root`` with its description as a comment (the shipped
    config files are generated with this and tested against the defaults)."""
    import yaml

    lines = [f"# {line}" for line in header.splitlines()] + [f"{root}:"]

    def emit(node: Any, indent: int) -> None:
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            pad = "  " * indent
            if dataclasses.is_dataclass(value):
                lines.append(f"{pad}{f.name}:  # {f.metadata.get('doc', '')}")
                emit(value, indent + 1)
            else:
                text = yaml.safe_dump(list(value) if isinstance(value, tuple) else value, default_flow_style=True).strip()
                text = text.removesuffix("...").strip()
                lines.append(f"{pad}{f.name}: {text}  # {f.metadata.get('doc', '')}")

    emit(cfg, 1)
    return "\n".join(lines) + "\n"


class LoadableConfig:
    """Mixin of the top-level configs: ``from_dict``, ``from_yaml`` (under ``YAML_KEY``), ``to_dict``."""

    YAML_KEY = ""

    @classmethod
    def from_dict(cls, data: dict | None):
        return from_dict(cls, data)

    @classmethod
    def from_yaml(cls, path: str | Path):
        return load_yaml(cls, path, key=cls.YAML_KEY or None)

    def to_dict(self) -> dict:
        return to_dict(self)
