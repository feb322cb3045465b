"""jaxvision.models.detection: localization, landmarks, YOLO v1, SSD, Faster R-CNN: one Detections interface."""
from jaxvision.models.detection.common import Detections, batched_postprocess, make_loss_fn, multiclass_nms
from jaxvision.models.detection.faster_rcnn import FasterRCNN, FasterRCNNResNet50, FasterRCNNTiny
from jaxvision.models.detection.landmarks import LandmarkNet, LandmarkNetTiny
from jaxvision.models.detection.localization import Localizer, LocalizerResNet18, LocalizerTiny
from jaxvision.models.detection.ssd import SSD, SSD300, SSDTiny
from jaxvision.models.detection.yolo import YOLO448, YOLOTiny, YOLOv1
