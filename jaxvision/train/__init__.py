"""jaxvision.train"""
