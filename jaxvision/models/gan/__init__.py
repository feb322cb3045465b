"""jaxvision.models.gan"""
from jaxvision.models.gan.dcgan import (
    UPSAMPLING,
    DCGANDiscriminator,
    DCGANGenerator,
    dcgan_optimizer,
)
from jaxvision.models.gan.mlp_gan import MLPDiscriminator, MLPGenerator
