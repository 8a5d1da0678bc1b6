"""Typed, strict configuration. Imports pydantic and the standard library only, so that a bad config
is rejected before torch, lightning or transformers load."""

from trainer.config.train import ConfigError, TrainConfig, validate

__all__ = ["ConfigError", "TrainConfig", "validate"]
