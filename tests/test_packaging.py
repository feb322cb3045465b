"""pyproject.toml says what CI does: the dependency lower bounds are the versions CI's oldest-dependency job
installs, and the `slow` marker's description says whether the default suite (and CI) runs slow tests."""
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


def _mentions_exclusion(text):
    return re.search(r"\b(excluded|left out|not run|skipped)\b", text) is not None


def test_slow_marker_says_what_the_suite_and_ci_do():
    opts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    desc = next(m.split(":", 1)[1] for m in opts["markers"] if m.startswith("slow:"))
    excluded = re.search(r"-m\s*['\"]?not slow", opts.get("addopts", "")) is not None
    assert _mentions_exclusion(desc) == excluded, f"slow marker {desc!r} but addopts {opts.get('addopts')!r}"
    ci = (ROOT / ".ci" / "run").read_text()
    # slow tests are important paths: CI runs them, by the default selection or explicitly
    assert "not slow" not in ci and (not excluded or re.search(r"-m\s*['\"]?slow", ci)), ".ci/run skips slow tests"
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for sentence in re.split(r"(?<=[.;])\s", doc.read_text()):
            if "marked `slow`" in sentence:
                assert _mentions_exclusion(sentence.split("`slow`", 1)[1].split("`-m")[0]) == excluded, (doc, sentence)
