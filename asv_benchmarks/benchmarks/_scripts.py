"""The repository's scripts/<name>.py as modules (measuring tools that reach into the
kernels' internals live there, outside the fastnn package)."""
import importlib.util
import os

SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
                       "scripts")


def script(name):
    spec = importlib.util.spec_from_file_location(f"fastnn_scripts_{name}",
                                                  os.path.join(SCRIPTS, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
