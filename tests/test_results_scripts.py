"""Scripts under docs/results/ that write result files run (tiny settings)."""
import importlib.util
import pathlib

import numpy as np
import pytest
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_srresnet_ablation_script_runs_and_scores_the_held_out_photos(tmp_path):
    """``docs/results/srresnet_ablation.py`` (documented in README) on a 1-block net for 2 steps: one RESULT with
    the four variants' [mean, coffee, rocket] gains; then every other knob at once, in two runs."""
    path = ROOT / "docs" / "results" / "srresnet_ablation.py"
    spec = importlib.util.spec_from_file_location("srresnet_ablation", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["steps=2", "blocks=1", "nf=8", "warm=1", "pbn=1", "pbs=2", "pool=sk"])
    for key in ("raw", "ema", "raw_pbn", "ema_pbn"):
        mean, coffee, rocket = result[key]
        assert np.isfinite([mean, coffee, rocket]).all() and abs(mean - (coffee + rocket) / 2) < 1e-3
    assert result["ema"] != result["raw"]  # the EMA lags 2 steps of training
    # the other knobs (aligned whole-photo LR, colour / contrast / negative augmentations, Y loss, no BatchNorm,
    # fractional scales, image files)
    photo = tmp_path / "extra.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (120, 140, 3), np.uint8)).save(photo)
    result = module.main(["steps=2", "blocks=1", "nf=8", "warm=1", "pool=nat", "whole=1", "chan=1", "yw=1", "bn=0",
                          "inten=0.5", "inv=1", "scales=2,2.5", f"files={photo}"])
    assert "raw_pbn" not in result and np.isfinite(result["raw"]).all()  # no BatchNorm: nothing to recompute
    # the session-7 knobs (L1 loss, Adam b2, final lr fraction, the model's blocked last-conv gradients), and the
    # model's last conv is the library's again afterwards
    from jaxvision.models.gan import srgan
    from jaxvision.ops import thin_output_conv

    result = module.main(["steps=2", "blocks=1", "nf=8", "warm=1", "pool=nat", "pbn=0", "yw=1", "l1=1", "b2=0.99",
                          "end=0.001", "blocked=1"])
    assert np.isfinite(result["raw"]).all() and srgan.thin_output_conv is thin_output_conv
