"""jaxvision.metrics"""
# metrics-gan: generative and image-quality metrics
from jaxvision.metrics.feature_networks import FeatureNetwork, feature_fn_from_flax, load_fid_inception
from jaxvision.metrics.fid import FIDResult, compute_statistics, extract_features, fid
from jaxvision.metrics.frechet import frechet_distance, frechet_distance_from_features
from jaxvision.metrics.image import psnr, ssim
from jaxvision.metrics.inception_score import MeanStd, inception_score
from jaxvision.metrics.kid import kernel_inception_distance
from jaxvision.metrics.stats import RunningStats, load_stats, save_stats
from jaxvision.metrics.coco import CocoResult, evaluate_coco
from jaxvision.metrics.average_precision import average_precision, precision_recall_curve
from jaxvision.metrics.voc import VocResult, evaluate_voc
from jaxvision.metrics.streaming import DetectionEvaluator, from_coco_results, to_coco_results
