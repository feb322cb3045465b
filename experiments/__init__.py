"""Experiments: one file per experiment, each a config and an entry point."""
