"""jaxvision.metrics"""
