"""Experiments: one module per experiment in this package, discovered by its attributes (the application layer:
it wires ``jaxvision`` together; the library never imports it).

An experiment module ``experiments/<name>.py`` exports:

- ``Config``: a dataclass whose defaults are the full run. Fields with a fixed set of values are typed
  ``typing.Literal[...]``, so a wrong value is rejected naming the valid ones;
- ``TINY``: dict of overrides giving a seconds-long smoke run (used by the tests);
- ``train(cfg, workdir) -> dict``: trains, writing checkpoints, ``metrics.jsonl`` and at least one PNG into
  ``workdir``; returns the final metrics;
- ``evaluate(cfg, workdir) -> dict``: evaluates the latest checkpoint of ``workdir``;

and optionally

- ``PRESETS``: ``{name: overrides}``, selected with ``--set preset=NAME`` (not a config field: the overrides are
  what the checkpoint records);
- ``EVAL_KEYS``: the config keys ``jaxvision eval`` may override with ``--set`` (everything else, the model and
  its data, comes from the config stored in the checkpoint).

Any module of this package with the four required attributes is an experiment; its name is the module name.
Modules whose name starts with ``_`` hold code shared by several experiments (``_detection``, ``_dcgan``,
``_digits_classifier``) and the CLI (``_cli``); an experiment never imports another experiment. A module that fails
to import is reported by ``jaxvision list`` instead of breaking the others.
"""
from __future__ import annotations

import ast
import dataclasses
import glob
import importlib
import os
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


def _literal_eval(key: str, text: str, what: str) -> Any:
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        raise ExperimentError(f"--set {key}={text}: expected {what}, got {text!r}") from None


def _describe(typ: Any) -> str:
    if typing.get_origin(typ) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(typ))
    return getattr(typ, "__name__", str(typ))


def coerce(key: str, value: Any, typ: Any) -> Any:
    """``value`` checked against (and, from a command-line string, converted to) the field type ``typ``.

    Handles bool, int, float, str, ``Literal[...]`` choices, ``X | None`` and tuples/lists of those; a string is
    parsed as ``--set key=value`` would give it.

    Raises:
      ExperimentError: naming ``key``, what was expected and what was got.
    """
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    shown = value if isinstance(value, str) else repr(value)
    if origin is typing.Literal:
        if isinstance(value, str) and not any(isinstance(a, str) for a in args):  # Literal[8, 16, 32] from the CLI
            value = _literal_eval(key, value, _describe(typ))
        if not any(value == a and type(value) is type(a) for a in args):
            raise ExperimentError(f"--set {key}={shown}: expected {_describe(typ)}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):  # Optional[X]: None / 'none' or an X
        rest = [a for a in args if a is not type(None)]
        if len(rest) < len(args) and (value is None or (isinstance(value, str) and value.strip().lower() == "none")):
            return None
        return coerce(key, value, rest[0])
    if typ is bool:
        if isinstance(value, str):
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
        if not isinstance(value, bool):
            raise ExperimentError(f"--set {key}={shown}: expected a bool (true/false), got {value!r}")
        return value
    if typ in (int, float):
        if isinstance(value, str):
            try:
                value = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                raise ExperimentError(f"--set {key}={shown}: expected {typ.__name__}, got {shown!r}") from None
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not typ:
            raise ExperimentError(f"--set {key}={shown}: expected {typ.__name__}, got {value!r}")
        return value
    if typ is str:
        if not isinstance(value, str):
            raise ExperimentError(f"--set {key}: expected str, got {value!r}")
        return value
    if origin in (tuple, list) or typ in (tuple, list):
        elem = args[0] if args else None
        if isinstance(value, str):
            try:
                value = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                if elem is not str and typing.get_origin(elem) is not typing.Literal:
                    raise ExperimentError(f"--set {key}={shown}: expected a {getattr(origin or typ, '__name__', typ)} "
                                          f"literal such as (32, 64), got {shown!r}") from None
                value = tuple(v.strip() for v in value.split(",") if v.strip())  # ring,grid -> ('ring', 'grid')
        value = value if isinstance(value, (tuple, list)) else (value,)
        if elem is not None and elem is not Ellipsis:
            try:
                value = [coerce(key, v, elem) for v in value]
            except ExperimentError:
                raise ExperimentError(f"--set {key}={shown}: expected elements of type {_describe(elem)}, "
                                      f"got {value!r}") from None
        return (tuple if (origin or typ) is tuple else list)(value)
    return value


def _name(module: types.ModuleType) -> str:
    return module.__name__.split(".")[-1]


def make_config(module: types.ModuleType, overrides: dict[str, Any] | None = None, tiny: bool = False,
                base: dict[str, Any] | None = None):
    """Build ``module.Config``: defaults, then ``base``, then ``PRESETS[overrides['preset']]``, then ``TINY`` (if
    ``tiny``), then the other ``overrides``.

    Args:
      module: an experiment module.
      overrides: ``{key: value}``; string values are parsed to the field's type (as from ``--set key=value``),
        other values are type-checked. The key ``preset`` selects one of ``module.PRESETS``.
      tiny: apply the module's ``TINY`` overrides.
      base: values that replace the defaults first (e.g. a config stored in a checkpoint).

    Raises:
      ExperimentError: unknown key or preset, a value of the wrong type, a value outside a ``Literal`` choice.
    """
    fields = {f.name for f in dataclasses.fields(module.Config)}
    hints = typing.get_type_hints(module.Config)
    overrides = dict(overrides or {})
    presets = getattr(module, "PRESETS", {})
    layers: list[dict[str, Any]] = [dict(base or {})]
    if "preset" in overrides:
        preset = overrides.pop("preset")
        if preset not in presets:
            raise ExperimentError(f"--set preset={preset}: unknown preset for experiment {_name(module)!r}; valid: "
                                  f"{', '.join(presets) or '(this experiment has none)'}")
        layers.append(presets[preset])
    if tiny:
        layers.append(module.TINY)
    layers.append(overrides)
    values: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if key not in fields:
                raise ExperimentError(f"--set {key}: unknown config key for experiment {_name(module)!r}; known "
                                      f"keys: {', '.join(sorted(fields))}" + (", preset" if presets else ""))
            values[key] = coerce(key, value, hints[key])
    return module.Config(**values)


def stored_config(module: types.ModuleType, workdir: str, overrides: dict[str, Any] | None = None):
    """The config a run in ``workdir`` was trained with (from its latest checkpoint), with ``overrides`` of
    ``module.EVAL_KEYS`` only: what ``jaxvision eval`` evaluates.

    The checkpoint is ``workdir/checkpoints``, or, for an experiment that keeps several runs in one workdir
    (``mode_collapse``), the ``workdir/*/checkpoints`` directories, whose configs must agree. A stored
    ``preset`` (written before presets became override dicts) is expanded; fields added since the checkpoint
    was written take their defaults.

    Raises:
      ExperimentError: an override of a key that is not eval-time, a stored config this Config cannot hold.
      CheckpointError: no checkpoint, or one of another experiment.
    """
    from jaxvision.train import CheckpointError, CheckpointManager
    from jaxvision.train.checkpoint import CHECKPOINT_DIR

    name = _name(module)
    eval_keys = tuple(getattr(module, "EVAL_KEYS", ()))
    bad = sorted(set(overrides or {}) - set(eval_keys))
    if bad:
        raise ExperimentError(f"--set {bad[0]}: not an eval-time key of {name!r} (the model and data come from the "
                              f"config stored in the checkpoint); eval-time keys: {', '.join(eval_keys) or '(none)'}")
    runs = [workdir] if os.path.isdir(os.path.join(workdir, CHECKPOINT_DIR)) else sorted(
        os.path.dirname(os.path.dirname(p)) for p in glob.glob(os.path.join(workdir, "*", CHECKPOINT_DIR, "")))
    if not runs:
        raise CheckpointError(f"no checkpoint of {name} in {os.path.abspath(workdir)}; run "
                              f"`jaxvision train {name} --workdir {workdir}` first")
    configs = []
    for run in runs:
        with CheckpointManager(run, name) as ckpt:
            configs.append(ckpt.metadata().get("config"))
    if any(c != configs[0] for c in configs) or not isinstance(configs[0], dict):
        raise CheckpointError(f"the checkpoints in {os.path.abspath(workdir)} hold different or no configs")
    stored = dict(configs[0])
    fields = {f.name for f in dataclasses.fields(module.Config)}
    preset = stored.pop("preset", None) if "preset" not in fields else None
    unknown = sorted(set(stored) - fields)
    if unknown:
        raise ExperimentError(f"the checkpoint in {workdir} was written with config keys {unknown} that experiment "
                              f"{name!r} no longer has; evaluate it with the jaxvision version that trained it")
    base = dict(getattr(module, "PRESETS", {}).get(preset, {}))
    base.update(stored)
    return make_config(module, overrides, base=base)


def parse_sets(items: list[str] | None) -> dict[str, str]:
    """``['a=1', 'b=x']`` -> ``{'a': '1', 'b': 'x'}``; ExperimentError on an item without '='."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ExperimentError(f"--set {item!r}: expected key=value")
        out[key.strip()] = value
    return out
