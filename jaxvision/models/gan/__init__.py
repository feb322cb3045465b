"""jaxvision.models.gan"""
from jaxvision.models.gan.dcgan import (
    DCGANDiscriminator,
    DCGANGenerator,
    UPSAMPLING,
    dcgan_optimizer,
)
from jaxvision.models.gan.mlp_gan import MLPDiscriminator, MLPGenerator
