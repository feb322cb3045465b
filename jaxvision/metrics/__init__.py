"""jaxvision.metrics"""
# metrics-gan: generative and image-quality metrics
from jaxvision.metrics.feature_networks import FeatureNetwork, feature_fn_from_flax, load_fid_inception
from jaxvision.metrics.fid import FIDResult, compute_statistics, extract_features, fid
from jaxvision.metrics.frechet import frechet_distance, frechet_distance_from_features
from jaxvision.metrics.image import psnr, ssim
from jaxvision.metrics.inception_score import MeanStd, inception_score
from jaxvision.metrics.kid import kernel_inception_distance
from jaxvision.metrics.stats import RunningStats, load_stats, save_stats
# metrics-det: detection metrics (COCO/VOC mAP, PR curves, streaming evaluator, plots, fps)
from jaxvision.metrics.average_precision import average_precision, precision_recall_curve
from jaxvision.metrics.coco import CocoResult, evaluate_coco, evaluate_coco_arrays
from jaxvision.metrics.plots import plot_pr_curve, save_pr_curves
from jaxvision.metrics.speed import FpsResult, measure_fps
from jaxvision.metrics.streaming import DetectionEvaluator, from_coco_results, to_coco_results
from jaxvision.metrics.voc import VocResult, evaluate_voc
from jaxvision.metrics.mode_collapse import mode_collapse_stats, nearest_modes
