"""The layering of docs/ARCHITECTURE.md, checked on the import statements of every file.

Each package of ``jaxvision`` may import only the jaxvision packages listed for it; ``jaxvision`` never imports
``experiments``; an experiment imports shared experiment code (``experiments._*``) but never another experiment.
A new package must be added to ``ALLOWED`` (and to docs/ARCHITECTURE.md) before its imports can pass.
"""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / "jaxvision"

# package -> the jaxvision packages it may import (besides itself and jaxvision._checks / jaxvision.__version__)
ALLOWED = {
    "ops": (),
    "nn": ("ops",),
    "models": ("ops", "nn"),
    "metrics": ("ops", "nn"),
    "data": (),
    "proposals": (),
    "train": ("ops",),
}
# third-party packages a layer must not use
FORBIDDEN_THIRD_PARTY = {"ops": ("flax", "optax", "orbax"), "metrics": ("optax", "orbax"), "data": ("flax", "optax"),
                         "proposals": ("jax", "flax", "optax", "orbax")}


def _imports(path: pathlib.Path):
    """Absolute module names imported by ``path`` (``from jaxvision import ops`` counts as ``jaxvision.ops``)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import"
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


def _jaxvision_package(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "jaxvision" or len(parts) == 1 or parts[1] in ("_checks", "__version__"):
        return None
    return parts[1]


def test_every_package_has_a_rule():
    packages = sorted(p.name for p in PKG.iterdir() if (p / "__init__.py").exists())
    assert packages == sorted(ALLOWED), "add the new package to ALLOWED and to docs/ARCHITECTURE.md"
    modules = sorted(p.name for p in PKG.glob("*.py"))
    assert modules == ["__init__.py", "_checks.py"], "top-level modules belong in a layer package"


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports(layer):
    bad = []
    for path in sorted((PKG / layer).rglob("*.py")):
        for mod in _imports(path):
            pkg = _jaxvision_package(mod)
            if mod.split(".")[0] == "experiments":
                bad.append(f"{path.relative_to(ROOT)} imports {mod} (the library never imports experiments)")
            elif pkg is not None and pkg != layer and pkg not in ALLOWED[layer]:
                bad.append(f"{path.relative_to(ROOT)} imports {mod} ({layer} may import {ALLOWED[layer] or 'no'} "
                           "other jaxvision packages)")
            elif mod.split(".")[0] in FORBIDDEN_THIRD_PARTY.get(layer, ()):
                bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not bad, "\n".join(bad)


def test_no_experiment_imports_another():
    bad = []
    for path in sorted((ROOT / "experiments").glob("*.py")):
        for mod in _imports(path):
            parts = mod.split(".")
            if (parts[0] == "experiments" and len(parts) > 1 and not parts[1].startswith("_")
                    and (ROOT / "experiments" / f"{parts[1]}.py").exists()):
                bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not bad, "experiments share code through experiments/_*.py or the library:\n" + "\n".join(bad)
