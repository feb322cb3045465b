"""jaxvision.models: backbones (VGG, ResNet), detectors (localization, landmarks, YOLO v1, SSD) and GANs."""
from jaxvision.models import backbones, detection
from jaxvision.models.detection import (
                                        SSD,
                                        SSD300,
                                        YOLO448,
                                        Detections,
                                        LandmarkNet,
                                        Localizer,
                                        SSDTiny,
                                        YOLOTiny,
                                        YOLOv1,
)
