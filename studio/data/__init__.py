"""Datasets by name: loading, splitting, normalising and batching (no Qt)."""

from .arrays import Arrays
from .bundle import DataBundle, load_data
from .sources import load_arrays

__all__ = ["Arrays", "DataBundle", "load_arrays", "load_data"]
