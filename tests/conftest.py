"""Test setup: 8 simulated CPU devices so multi-device code runs without accelerators.

XLA_FLAGS must be set before jax is imported anywhere, hence at conftest import time.
"""
import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
