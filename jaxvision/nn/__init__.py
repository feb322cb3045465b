"""jaxvision.nn"""
from jaxvision.nn.conv import Conv
from jaxvision.nn.conv_transpose import ConvTranspose
from jaxvision.nn.inception import FIDInceptionV3  # metrics-gan
