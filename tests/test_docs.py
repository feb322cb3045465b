"""What README.md and docs/*.md tell users to import or run exists: ``from jaxvision... import`` lines in code
blocks, ``python -m`` modules, backquoted ``jaxvision.x.y`` names and repository paths."""
import importlib
import importlib.util
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Files ARCHITECTURE.md names as the place for code that does not exist yet (Pix2Pix).
PLANNED = {"jaxvision/models/gan/pix2pix.py", "jaxvision/train/gan/conditional.py", "experiments/_gan.py"}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_documented_imports_and_names_exist(doc):
    text = doc.read_text()
    for line in re.findall(r"^\s*(from (?:jaxvision|experiments)[\w.]* import [\w, ]+)$", text, re.M):
        exec(line, {})
    for module in re.findall(r"python -m ((?:jaxvision|experiments)[\w.]*)", text):
        assert importlib.util.find_spec(module) is not None, f"{doc.name}: python -m {module}: no such module"
    for dotted in set(re.findall(r"`((?:jaxvision|experiments)(?:\.\w+)+)", text)):
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):  # longest importable prefix, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:i]))
                break
            except ImportError:
                continue
        for name in parts[i:]:
            assert hasattr(obj, name), f"{doc.name}: `{dotted}` does not exist"
            obj = getattr(obj, name)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_documented_paths_exist(doc):
    text = doc.read_text()
    paths = set(re.findall(r"`((?:jaxvision|experiments|tests|benchmarks|docs|\.ci)/[\w./]+\.(?:py|md|txt|npz|json))`",
                           text))
    paths |= set(re.findall(r"\]\(((?:docs/)?[\w./-]+\.(?:md|png))(?:#[\w-]+)?\)", text))
    base = ROOT if doc.name == "README.md" else doc.parent
    missing = [p for p in paths - PLANNED if not (base / p).exists() and not (ROOT / p).exists()]
    assert not missing, f"{doc.name} names missing files: {missing}"
