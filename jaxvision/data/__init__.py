"""jaxvision.data"""
