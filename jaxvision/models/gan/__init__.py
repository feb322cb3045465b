"""jaxvision.models.gan"""
