"""jaxvision.metrics: ``detection/`` (mAP, PR curves, FPS), ``generative/`` (FID, IS, KID) and ``image/`` (PSNR,
SSIM, Sobel sharpness); every public name is also importable from here."""

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
from jaxvision.metrics.image import BT601_LUMA, mean_gradient_magnitude, psnr, ssim
