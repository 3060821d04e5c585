"""Data sets (registered by name in ``braincl.registry.DATASETS``) and the pieces they share."""

from .base import DataError, ImageSource, SplitSources, TensorSource

__all__ = ["DataError", "ImageSource", "SplitSources", "TensorSource"]
