"""Experiments: one module per experiment in this package, discovered by its attributes.

An experiment module ``experiments/<name>.py`` exports:

- ``Config``: a dataclass whose defaults are the full run;
- ``TINY``: dict of overrides giving a seconds-long smoke run (used by the tests);
- ``train(cfg, workdir) -> dict``: trains, writing checkpoints, ``metrics.jsonl`` and at least one PNG into
  ``workdir``; returns the final metrics;
- ``evaluate(cfg, workdir) -> dict``: evaluates the latest checkpoint of ``workdir``.

Any module of this package with those four attributes is an experiment; its name is the module name. A module
that fails to import is reported by ``jaxvision list`` instead of breaking the others.
"""
from __future__ import annotations

import ast
import dataclasses
import importlib
import pkgutil
import types
import typing
from typing import Any

REQUIRED = ("Config", "TINY", "train", "evaluate")


class ExperimentError(ValueError):
    """Unknown experiment name, unknown config key or a value of the wrong type."""


def _candidates() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def is_experiment(module: types.ModuleType) -> bool:
    return all(hasattr(module, a) for a in REQUIRED) and dataclasses.is_dataclass(module.Config)


def discover() -> tuple[dict[str, types.ModuleType], dict[str, str]]:
    """Import every module of the package: ``({name: module}, {name: import error})``."""
    found, broken = {}, {}
    for name in _candidates():
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except Exception as e:  # a broken experiment must not hide the others
            broken[name] = f"{type(e).__name__}: {e}"
            continue
        if is_experiment(module):
            found[name] = module
    return found, broken


def names() -> list[str]:
    """Names of the experiments that import cleanly."""
    return sorted(discover()[0])


def get(name: str) -> types.ModuleType:
    """The experiment module ``name``; ExperimentError if there is no such experiment."""
    if name not in _candidates():
        raise ExperimentError(f"unknown experiment {name!r}; available: {', '.join(names()) or '(none)'}")
    module = importlib.import_module(f"{__name__}.{name}")
    if not is_experiment(module):
        missing = [a for a in REQUIRED if not hasattr(module, a)]
        raise ExperimentError(f"experiments/{name}.py is not an experiment (missing {missing})")
    return module


def _parse(key: str, text: str, typ: Any) -> Any:
    """Convert the command-line string ``text`` to the field type ``typ`` (int, float, bool, str, tuples, ...)."""
    origin = typing.get_origin(typ)
    if typ is bool:
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ExperimentError(f"--set {key}={text}: expected a bool (true/false), got {text!r}")
    if typ in (int, float):
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            value = None
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not typ:
            raise ExperimentError(f"--set {key}={text}: expected {typ.__name__}, got {text!r}")
        return value
    if typ is str:
        return text
    if origin in (tuple, list) or typ in (tuple, list):
        args = typing.get_args(typ)
        elem = args[0] if args else None
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            if elem is not str:
                raise ExperimentError(f"--set {key}={text}: expected a {getattr(origin, '__name__', typ)} literal "
                                      f"such as (32, 64), got {text!r}") from None
            value = tuple(v.strip() for v in text.split(",") if v.strip())  # ring,grid -> ('ring', 'grid')
        value = (value,) if not isinstance(value, (tuple, list)) else value
        if elem is not None and elem is not Ellipsis and not all(
                isinstance(v, elem) and not (elem is int and isinstance(v, bool)) for v in value):
            raise ExperimentError(f"--set {key}={text}: expected elements of type {elem.__name__}, got {text!r}")
        return (tuple if (origin or typ) is tuple else list)(value)
    if origin in (typing.Union, types.UnionType):  # Optional[X]: 'none' or an X
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if text.strip().lower() == "none" and len(args) < len(typing.get_args(typ)):
            return None
        return _parse(key, text, args[0])
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def make_config(module: types.ModuleType, overrides: dict[str, Any] | None = None, tiny: bool = False):
    """Build ``module.Config`` from its defaults, ``TINY`` (if ``tiny``) and ``overrides``.

    Args:
      module: an experiment module.
      overrides: ``{key: value}``; string values are parsed to the field's type (as from ``--set key=value``),
        other values are type-checked.
      tiny: apply the module's ``TINY`` overrides first.

    Raises:
      ExperimentError: unknown key or a value of the wrong type.
    """
    fields = {f.name: f for f in dataclasses.fields(module.Config)}
    hints = typing.get_type_hints(module.Config)
    values: dict[str, Any] = dict(module.TINY) if tiny else {}
    for key, value in (overrides or {}).items():
        if key not in fields:
            raise ExperimentError(f"--set {key}: unknown config key for experiment "
                                  f"{module.__name__.split('.')[-1]!r}; known keys: {', '.join(fields)}")
        typ = hints[key]
        if isinstance(value, str) and typ is not str:
            value = _parse(key, value, typ)
        elif typ in (int, float, bool, str) and not (isinstance(value, typ) or (typ is float and isinstance(
                value, int))) or (typ is int and isinstance(value, bool)):
            raise ExperimentError(f"--set {key}: expected {typ.__name__}, got {value!r}")
        values[key] = value
    return module.Config(**values)


def parse_sets(items: list[str] | None) -> dict[str, str]:
    """``['a=1', 'b=x']`` -> ``{'a': '1', 'b': 'x'}``; ExperimentError on an item without '='."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ExperimentError(f"--set {item!r}: expected key=value")
        out[key.strip()] = value
    return out
