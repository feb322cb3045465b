"""Detection metrics: VOC / COCO mAP (pycocotools-exact), precision-recall curves, streaming evaluation, plots, FPS."""
from jaxvision.metrics.detection.coco import CocoResult, evaluate_coco, evaluate_coco_arrays
from jaxvision.metrics.detection.plots import plot_pr_curve, save_pr_curves
from jaxvision.metrics.detection.precision_recall import average_precision, precision_recall_curve
from jaxvision.metrics.detection.speed import FpsResult, measure_fps
from jaxvision.metrics.detection.streaming import DetectionEvaluator, from_coco_results, to_coco_results
from jaxvision.metrics.detection.voc import VocResult, evaluate_voc
