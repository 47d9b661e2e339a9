"""fastnn: Numba-compiled multilayer perceptrons."""
__version__ = "0.1.0"
