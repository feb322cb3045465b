"""jaxvision.models.gan"""
from jaxvision.models.gan.dcgan import (
    UPSAMPLING,
    DCGANDiscriminator,
    DCGANGenerator,
    dcgan_optimizer,
)
from jaxvision.models.gan.mlp_gan import MLPDiscriminator, MLPGenerator
from jaxvision.models.gan.pix2pix import (
    PatchGANDiscriminator,
    UNetGenerator,
    patchgan_receptive_field,
    pix2pix_optimizer,
    unet_depth,
)
from jaxvision.models.gan.srgan import SRGANDiscriminator, SRResNet, pixel_shuffle, vgg54_features, vgg54_variables
