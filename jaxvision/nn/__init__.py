"""jaxvision.nn"""
from jaxvision.nn.conv_transpose import ConvTranspose
