"""The layering in DESIGN.md: ops -> nn -> models; metrics never import train; train never imports a model;
data knows no model."""
import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parents[1] / "jaxvision"

FORBIDDEN = {
    "ops": ("jaxvision.nn", "jaxvision.models", "jaxvision.metrics", "jaxvision.train", "jaxvision.data", "flax"),
    "nn": ("jaxvision.models", "jaxvision.metrics", "jaxvision.train", "jaxvision.data"),
    "metrics": ("jaxvision.train", "jaxvision.models", "jaxvision.data"),
    "train": ("jaxvision.models",),
    "data": ("jaxvision.models", "jaxvision.train"),
}


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports(layer):
    bad = []
    for path in sorted((PKG / layer).rglob("*.py")):
        for mod in _imports(path):
            if any(mod == f or mod.startswith(f + ".") for f in FORBIDDEN[layer]):
                bad.append(f"{path.relative_to(PKG)} imports {mod}")
    assert not bad, "\n".join(bad)
