"""fastnn's version (also the distribution's: pyproject.toml reads it from here)."""
__version__ = "0.2.0"
