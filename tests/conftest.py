"""Test-session settings."""
import os

# scikit-learn's estimator checks include an array API check (NumPy inputs with array
# API dispatch on) that runs only when SciPy was imported with this set
os.environ.setdefault("SCIPY_ARRAY_API", "1")
