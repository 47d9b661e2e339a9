"""fastnn.kernels: the math of fastnn as Numba kernels on flat arrays.

Each kernel is a pure function of arrays and scalars that writes into
preallocated outputs; nothing here imports from the ``fastnn`` layer above.
Arrays of samples are (features, batch), one column per sample, as in the notes.
"""
from .activations import ACTIVATIONS
from .dense import (
    backprop_delta,
    backprop_inputs,
    backprop_weights,
    dense_backward,
    dense_forward,
)
from .matmul import matmul
