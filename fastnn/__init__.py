"""fastnn: multilayer perceptrons trained by Numba-compiled kernels.

    model = fastnn.Sequential([fastnn.Dense(56, 64, activation="relu"),
                               fastnn.Dense(64, 1)], loss="mse", seed=0)
    history = model.fit(X, y, epochs=20, batch_size=64, optimizer=fastnn.Adam(lr=1e-3))
"""
from fastnn.callbacks import Callback, Checkpoint, ReduceLROnPlateau
from fastnn.layers import (Activation, BatchNorm, Conv1D, Conv2D, Dense, Dropout, Flatten,
                           MaxPool1D, MaxPool2D)
from fastnn.model import Sequential
from fastnn.onnx_export import to_onnx
from fastnn.optimizers import SGD, Adagrad, Adam, AdamW, Lamb, Lion, Optimizer, RMSprop
from fastnn.loading import load
from fastnn.schedules import CosineDecay, ExponentialDecay, InverseTimeDecay, StepDecay
from fastnn.threads import get_num_threads, set_num_threads
from fastnn.version import __version__


def compile(dtypes=("float32", "float64"), progress=print):
    """Compile the kernels of the common configurations ahead of time, into the kernel
    cache (fastnn.precompile): a first fit then loads them instead of compiling. A few
    minutes, once per machine and fastnn version; each configuration on a progress line
    through ``progress``. Returns the seconds taken."""
    from fastnn.precompile import compile_kernels

    return compile_kernels(dtypes, progress)


def __getattr__(name):
    """The scikit-learn estimators, imported on first use (fastnn.sklearn)."""
    if name in ("MLPClassifier", "MLPRegressor"):
        try:
            from fastnn import sklearn as estimators
        except ImportError as exc:
            raise ImportError(f"fastnn.{name} needs scikit-learn: pip install "
                              f"scikit-learn, or pip install -e '.[sklearn]' in fastnn's "
                              f"checkout ({exc})") from exc
        return getattr(estimators, name)
    raise AttributeError(f"module 'fastnn' has no attribute {name!r}")


__all__ = ["__version__", "MLPClassifier", "MLPRegressor",
           "Activation", "Adagrad", "Adam", "AdamW", "BatchNorm", "Callback", "Checkpoint",
           "Conv1D", "Conv2D", "CosineDecay", "Dense", "Dropout", "ExponentialDecay", "Flatten",
           "InverseTimeDecay", "Lamb", "Lion", "MaxPool1D", "MaxPool2D", "Optimizer", "RMSprop",
           "ReduceLROnPlateau", "SGD", "Sequential", "StepDecay",
           "compile", "get_num_threads", "load", "set_num_threads", "to_onnx"]
