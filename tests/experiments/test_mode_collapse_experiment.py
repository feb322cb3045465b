"""mode_collapse: tiny run writes the table, the PNGs and one checkpoint per (data, loss); evaluate re-scores it."""
import numpy as np
import pytest

import experiments
from experiments import mode_collapse as mc

pytestmark = pytest.mark.slow  # end-to-end experiment runs: CI's slow step (pytest -m slow)


def test_tiny_run_and_evaluate(tmp_path):
    cfg = experiments.make_config(mc, tiny=True)
    out = mc.train(cfg, str(tmp_path))
    for name in ("results.md", "samples.png", "grad_norm.png", "metrics.jsonl", "ring_minimax", "ring_hinge"):
        assert (tmp_path / name).exists(), name
    table = (tmp_path / "results.md").read_text()
    assert "| ring (8 modes) | minimax |" in table and "| ring (8 modes) | hinge |" in table
    for loss in cfg.losses:
        assert 0 <= out[f"ring/{loss}/modes_captured"] <= 8
        assert 0.0 <= out[f"ring/{loss}/high_quality"] <= 1.0
        assert 0.0 <= out[f"ring/{loss}/reverse_kl"] <= np.log(8) + 1e-9
    again = mc.evaluate(cfg, str(tmp_path))
    assert again["ring/hinge/reverse_kl"] == out["ring/hinge/reverse_kl"]


def test_grad_demo_saturating_gradient_collapses_as_d_gets_confident():
    cfg = experiments.make_config(mc, {"grad_demo_steps": 150, "learning_rate": 1e-2}, tiny=True)
    demo = mc.grad_demo(cfg)
    # D learns to reject the frozen G ...
    assert demo["d_fake"][-1] < 0.3 < demo["d_fake"][0]
    # ... and the saturating generator gradient shrinks relative to the non-saturating one
    ratio = demo["grad_minimax"] / demo["grad_non_saturating"]
    assert ratio[-1] < 0.5 * ratio[0]
