"""jaxvision.metrics: ``detection/`` (mAP, PR curves, FPS), ``generative/`` (FID, IS, KID) and ``image/`` (PSNR,
SSIM); every public name is also importable from here."""
import sys as _sys

from jaxvision.metrics import detection, generative, image
from jaxvision.metrics.detection import (
    CocoResult,
    DetectionEvaluator,
    FpsResult,
    VocResult,
    average_precision,
    evaluate_coco,
    evaluate_coco_arrays,
    evaluate_voc,
    from_coco_results,
    measure_fps,
    plot_pr_curve,
    precision_recall_curve,
    save_pr_curves,
    to_coco_results,
)
from jaxvision.metrics.generative import (
    FeatureNetwork,
    FIDResult,
    MeanStd,
    RunningStats,
    compute_statistics,
    extract_features,
    feature_fn_from_flax,
    fid,
    frechet_distance,
    frechet_distance_from_features,
    inception_score,
    kernel_inception_distance,
    load_fid_inception,
    load_stats,
    mode_collapse_stats,
    nearest_modes,
    save_stats,
)
from jaxvision.metrics.image import psnr, ssim

# Transitional: benchmarks/fid.py and tests/metrics/test_frechet.py (being changed by issue 12 at the same time)
# still import these three modules by their paths before the split. Remove once they import
# jaxvision.metrics.generative.<module>.
for _old in ("frechet", "feature_networks", "inception_weights"):
    __import__(f"{__name__}.generative.{_old}")
    _sys.modules.setdefault(f"{__name__}.{_old}", _sys.modules[f"{__name__}.generative.{_old}"])
del _old
