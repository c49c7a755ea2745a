"""Checkpoints in and about: ``mattecli weights import`` (foreign formats) and ``weights info``."""
