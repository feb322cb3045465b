"""Every experiment's default config still computes what it computed when its results were published.

``fixtures/reference.json`` was written by ``fixtures/make_reference.py`` from the code that produced the
README's results; see ``fingerprint.py`` for what is recorded. Configs are compared field by field (a field may
only be added if listed in ``NEW_FIELDS`` with the value that keeps the old behaviour), states and the first train
step numerically.
"""
import json
import math
import pathlib

import fingerprint as F
import pytest

pytestmark = pytest.mark.slow  # end-to-end experiment runs: CI's slow step (pytest -m slow)

REFERENCE = json.loads((pathlib.Path(__file__).parent / "fixtures" / "reference.json").read_text())

# Fields added after the reference was taken: {experiment: {field: default}}; the default reproduces the old run.
# ssd_shapes / yolo_shapes: the presets became override dicts, so the model and data set they switch are fields.
NEW_FIELDS: dict[str, dict] = {
    "ssd_shapes": {"model": "small", "dataset": "shapes", "max_boxes": 8, "data_dir": "", "augment": "none",
                   "data_threads": 0, "data_workers": 0},
    "yolo_shapes": {"model": "small", "dataset": "shapes", "max_boxes": 8, "data_dir": "", "augment": "none",
                    "data_threads": 0, "data_workers": 0},
}
# The run options (experiments/_run_options.py), added to every experiment, default off.
RUN_OPTIONS = {"tensorboard": False, "async_checkpoint": False, "keep_best": None, "keep_best_mode": "max",
               "profile_steps": None}
for _name in (*F.FIT_EXPERIMENTS, "mode_collapse"):
    NEW_FIELDS[_name] = {**NEW_FIELDS.get(_name, {}), **RUN_OPTIONS}
# Step metrics added since: make_train_step reports the gradients' global norm (it changes no other number).
NEW_METRICS = {"grad_norm"}
# Fields removed since: {experiment: {field: published value}}. 'preset' is no longer a field but an argument of
# make_config (--set preset=NAME applies PRESETS[NAME]); the published runs used no preset.
REMOVED_FIELDS: dict[str, dict] = {"ssd_shapes": {"preset": "shapes"}, "yolo_shapes": {"preset": "shapes"}}


def _close(got, want, scale=1.0, rtol=2e-5):
    return math.isclose(got, want, rel_tol=rtol, abs_tol=rtol * max(1.0, scale))


def _compare_tree(got: dict, want: dict, what: str):
    assert sorted(got) == sorted(want), f"{what}: leaves differ: {sorted(set(got) ^ set(want))[:8]}"
    bad = [(k, got[k], want[k]) for k in want
           if got[k][0] != want[k][0] or not _close(got[k][1], want[k][1], want[k][2])
           or not _close(got[k][2], want[k][2], want[k][2])]
    assert not bad, f"{what}: {len(bad)} leaves differ, e.g. {bad[:3]}"


def _compare_config(name, got: dict, want: dict):
    new, removed = NEW_FIELDS.get(name, {}), REMOVED_FIELDS.get(name, {})
    for k, v in removed.items():
        assert want.pop(k) == v and k not in got, (name, k)
    assert set(want) <= set(got), f"{name}: config fields removed: {sorted(set(want) - set(got))}"
    assert set(got) - set(want) <= set(new), f"{name}: unlisted new fields {sorted(set(got) - set(want) - set(new))}"
    for k, v in want.items():
        assert got[k] == v, f"{name}.Config.{k}: {got[k]!r} != published {v!r}"
    for k, v in new.items():
        assert got[k] == v, f"{name}.Config.{k} (new field): default {got[k]!r}, expected {v!r}"


@pytest.mark.parametrize("name", F.FIT_EXPERIMENTS)
def test_default_run_unchanged(name, tmp_path):
    got, want = F.fit_fingerprint(name, str(tmp_path)), REFERENCE[name]
    _compare_config(name, got["config"], dict(want["config"]))
    assert got["fit"] == want["fit"]
    assert got["batch"] == want["batch"]
    _compare_tree(got["state"], want["state"], f"{name} initial state")
    assert ("step_metrics" in got) == ("step_metrics" in want)
    if "step_metrics" in want:
        assert sorted(set(got["step_metrics"]) - NEW_METRICS) == sorted(want["step_metrics"])
        for k, v in want["step_metrics"].items():
            assert _close(got["step_metrics"][k], v, rtol=1e-4), (k, got["step_metrics"][k], v)
        _compare_tree(got["state_after_step"], want["state_after_step"], f"{name} state after one step")


def test_mode_collapse_unchanged():
    got, want = F.mode_collapse_fingerprint(), REFERENCE["mode_collapse"]
    _compare_config("mode_collapse", got["config"], dict(want["config"]))
    _compare_tree(got["state"], want["state"], "mode_collapse seed states")
    for loss, metrics in want["step_metrics"].items():
        for k, v in metrics.items():
            g = got["step_metrics"][loss][k]
            assert all(_close(a, b, rtol=1e-4) for a, b in zip(g, v)), (loss, k, g, v)
