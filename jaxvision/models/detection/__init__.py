"""jaxvision.models.detection"""
