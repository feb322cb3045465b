"""jaxvision.nn"""
from jaxvision.nn.inception import FIDInceptionV3  # metrics-gan
