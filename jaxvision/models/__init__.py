"""jaxvision.models"""
