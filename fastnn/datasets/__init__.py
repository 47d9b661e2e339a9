"""Data sets shipped with fastnn."""
from fastnn.datasets.bike import load_bike

__all__ = ["load_bike"]
