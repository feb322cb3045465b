"""jaxvision: object detection and GANs as pure JAX/Flax functions compiled by XLA."""
__version__ = "0.1.0"
