"""jaxvision.metrics"""
from jaxvision.metrics.coco import CocoResult, evaluate_coco
from jaxvision.metrics.average_precision import average_precision, precision_recall_curve
from jaxvision.metrics.voc import VocResult, evaluate_voc
from jaxvision.metrics.streaming import DetectionEvaluator, from_coco_results, to_coco_results
from jaxvision.metrics.plots import plot_pr_curve, save_pr_curves
from jaxvision.metrics.speed import FpsResult, measure_fps
