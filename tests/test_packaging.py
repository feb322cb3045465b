"""The dependency lower bounds in pyproject.toml are the versions CI's oldest-dependency job installs."""
import pathlib
import re
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_lower_bounds_are_the_tested_oldest_set():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lower = {m[1]: m[2] for d in deps if (m := re.match(r"([A-Za-z0-9_.-]+)>=([0-9][0-9.]*)", d))}
    pins = dict(line.split("==") for line in (ROOT / ".ci" / "oldest-constraints.txt").read_text().split("\n")
                if line.strip() and not line.startswith("#"))
    for name, version in pins.items():
        if name != "jaxlib":  # installed with jax at the same version
            assert lower.get(name) == version, f"pyproject {name}>={lower.get(name)} but CI tests {name}=={version}"
