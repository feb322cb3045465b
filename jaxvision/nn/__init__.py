"""jaxvision.nn"""
