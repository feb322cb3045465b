"""jaxvision.models.backbones"""
