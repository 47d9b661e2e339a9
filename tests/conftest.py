"""Test-session settings."""
import os

# scikit-learn's estimator checks include an array API check (NumPy inputs with array
# API dispatch on) that runs only when SciPy was imported with this set
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import importlib.util

import pytest

SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "scripts")


@pytest.fixture(scope="session")
def script():
    """``script(name)``: scripts/<name>.py loaded as a module (the scripts are not a
    package), once per session."""
    loaded = {}

    def load(name):
        if name not in loaded:
            spec = importlib.util.spec_from_file_location(name, os.path.join(SCRIPTS,
                                                                             name + ".py"))
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            loaded[name] = module
        return loaded[name]
    return load
