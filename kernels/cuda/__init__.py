"""fastnn.kernels.cuda: the numba.cuda twins of fastnn.kernels — the same public names,
argument order and results, on device arrays (docs/kernels.md, docs/gpu.md).
Importing this package imports CUDA (through ``_backend``); ``import fastnn`` never
does.

Conventions (differences from fastnn.kernels)
    Array arguments are device arrays (``cuda.to_device``, ``cuda.device_array``), in
    the CPU's shapes and layouts. The functions run on the host and launch kernels;
    they return without waiting for the device, except those that return a value
    computed there (the losses, ``grad_norm``, ``clip_factor``, ``count_correct``,
    ``add_penalty_grad``, ``forward_backward``, and ``train_batches`` and
    ``infer_batches`` once per call), which copy it back. ``matmul`` reads its arguments
    in place: pass arrays, not ``.T`` of a device array, which numba.cuda computes into
    a new array (a copy).
    A network's ``net`` and ``buf`` come from ``to_device(layout.net, layout.buffers(...))``
    — the same tables (optimizer segments on the device) and the same flat layout, with
    a longer ``buf.acc`` holding the loss and correct sums and the update's scratch
    (``acc_size``); ``copy_to_host(buf, host_buf)`` brings params, grads, state and
    stats back; ``update_to_device(upd)`` puts an ``Update``'s schedule on the device.
    ``optimizer_update`` takes an optional last argument, the scratch
    ``scratch_view(buf.acc, net)`` (allocated per call when omitted).
    ``stream`` and ``learning_rate`` are device functions (callable inside kernels);
    ``host_learning_rate`` is the host-callable rate. ``configure`` sets tile and block
    sizes; ``available``/``require_cuda`` say whether a GPU (or the simulator) is there.

Checking: ``check_layout`` takes the same arguments as the CPU's, device arrays in
place of NumPy arrays; unchecked calls with wrong shapes are undefined behaviour here
too.
"""
from .. import __all__ as _host_names
from .._activations import ACTIVATIONS
from .._losses import LOSSES
from .._layout import Network, Segments
from .._network import INFER, TRAIN, TRAIN_UPDATE, Buffers
from .._optimizers import OPTIMIZERS, STATE_VECTORS, Update
from ._activations import (activation_backward, activation_backward_bias, activation_forward,
                          bias_activation_forward, derivative_inplace, fill, row_sum,
                          softmax_jvp)
from ._backend import available, require_cuda
from ._batchnorm import (batch_moments, batchnorm_backward, batchnorm_forward,
                        batchnorm_inference, update_running)
from ._buffers import acc_size, copy_to_host, scratch_view, to_device, update_to_device
from ._checks import check_layout
from ._config import configure
from ._dense import (backprop_delta, backprop_inputs, backprop_weights, dense_backward,
                    dense_forward)
from ._dropout import dropout_activation_backward, dropout_backward, dropout_forward
from ._losses import (binary_crossentropy, categorical_crossentropy, count_correct, exp_poisson,
                     loss_value_and_grad, mse, poisson, sigmoid_binary_cross_entropy,
                     softmax_cross_entropy)
from ._matmul import matmul
from ._network import (backward, beta_view, bias_view, delta_view, forward, forward_backward,
                      gamma_view, gather_batch, output_view, running_mean_view,
                      running_var_view, target_view, weight_view, workspace_size)
from ._optimizers import (adagrad_update, adam_update, add_penalty_grad, clip_factor,
                         grad_norm, lamb_update, optimizer_update, rmsprop_update, sgd_update)
from ._random import keep_mask, stream
from ._schedules import host_learning_rate, learning_rate
from ._training import infer_batches, train_batches

#: the names only here (every name of fastnn.kernels.__all__ has its twin here)
CUDA_ONLY = ["to_device", "update_to_device", "copy_to_host", "acc_size", "scratch_view",
             "host_learning_rate", "fill", "configure", "available", "require_cuda"]
#: fastnn.kernels' public names, in its groups, then the device's own
__all__ = _host_names + CUDA_ONLY
