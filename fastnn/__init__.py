"""fastnn: multilayer perceptrons trained by Numba-compiled kernels.

    model = fastnn.Sequential([fastnn.Dense(56, 64, activation="relu"),
                               fastnn.Dense(64, 1)], loss="mse", seed=0)
    history = model.fit(X, y, epochs=20, batch_size=64, optimizer=fastnn.Adam(lr=1e-3))
"""
from fastnn.callbacks import Callback, Checkpoint, ReduceLROnPlateau
from fastnn.layers import Activation, BatchNorm, Dense, Dropout
from fastnn.model import Sequential
from fastnn.optimizers import SGD, Adagrad, Adam, AdamW, Lamb, Optimizer, RMSprop
from fastnn.persistence import load
from fastnn.schedules import CosineDecay, ExponentialDecay, InverseTimeDecay, StepDecay
from fastnn.threads import get_num_threads, set_num_threads

__version__ = "0.2.0"

__all__ = ["Activation", "Adagrad", "Adam", "AdamW", "BatchNorm", "Callback", "Checkpoint",
           "CosineDecay", "Dense", "Dropout", "ExponentialDecay", "InverseTimeDecay", "Lamb",
           "Optimizer", "RMSprop", "ReduceLROnPlateau", "SGD", "Sequential", "StepDecay",
           "get_num_threads", "load", "set_num_threads"]
