"""jaxvision.models.backbones: VGG and ResNet (NHWC, BN) + torchvision weight import."""
from jaxvision.models.backbones.resnet import ResNet, ResNet18, ResNet34, ResNet50, ResNet101, ResNetSmall, ResNetTiny
from jaxvision.models.backbones.torchvision_weights import (
                                                            load_state_dict,
                                                            merge_pretrained,
                                                            resnet_variables_from_torch,
                                                            vgg_variables_from_torch,
)
from jaxvision.models.backbones.vgg import VGG, VGG11, VGG16, VGG16BN, VGGTiny
