"""jaxvision.metrics"""
from jaxvision.metrics.coco import CocoResult, evaluate_coco
