"""fastnn.kernels: the math of fastnn as Numba kernels on flat arrays — a library to
compose inside your own ``@numba.njit`` training loop (docs/kernels.md;
``scripts/custom_loop.py``).

Conventions
    Samples are columns: a batch is a (features, batch) matrix (docs/design.md); a
    row-major (n, d) array's ``X.T`` is such a matrix without a copy, and the views of a
    workspace (``output_view`` ...) are column-major. W is (out, in), row-major.
    float32 or float64 — one dtype for every array of a call (scalar rules evaluate in
    float64). Each kernel writes its results into arrays the caller passes and never
    allocates; an output may alias an input only where its docstring says so. Codes:
    ``ACTIVATIONS``, ``LOSSES``, ``OPTIMIZERS`` (name -> int), ``INFER``, ``TRAIN``,
    ``TRAIN_UPDATE`` (modes of the network passes).

Kernels do not check shapes, dtypes or bounds — that is what makes them fast. Call
``check_layout`` once, before your compiled loop, on everything it will pass; a call
with arguments that were not checked is undefined behaviour (memory corruption, not an
exception).

The public surface is ``__all__``, in groups (each kernel's docstring gives its
formula, shapes and the outputs it writes):

    dense       dense_forward, dense_backward, backprop_delta, backprop_weights,
                backprop_inputs, matmul                  (Y = f(W·X + b); dX = Wᵀ·dZ,
                                                          dW = dZ·Xᵀ, db = row-sum dZ)
    activations activation_forward, bias_activation_forward, derivative_inplace,
                activation_backward, activation_backward_bias, softmax_jvp, row_sum
    losses      mse, binary_crossentropy, categorical_crossentropy, poisson,
                softmax_cross_entropy, sigmoid_binary_cross_entropy, exp_poisson,
                loss_value_and_grad, count_correct      (value returned, gradient written)
    optimizers  sgd_update, adagrad_update, rmsprop_update, adam_update, lamb_update,
                optimizer_update (any rule through an ``Update``), add_penalty_grad,
                grad_norm, clip_factor, learning_rate, STATE_VECTORS; every rule's
                formula in ``fastnn.kernels.optimizer_rules`` (the registry)
    remedies    batchnorm_forward, batchnorm_backward, batchnorm_inference,
                batch_moments, update_running, dropout_forward, dropout_backward,
                dropout_activation_backward, keep_mask, stream
    networks    Network, Segments, Buffers (a model's ``layout``: tables and flat
                buffers), weight_view, bias_view, gamma_view, beta_view,
                running_mean_view, running_var_view, output_view, target_view,
                delta_view, workspace_size, gather_batch, forward, backward,
                forward_backward, train_batches, infer_batches
    checking    check_layout

Stability: the names in ``__all__`` keep their meaning and argument order within a
minor version (0.x); a change comes in the next minor version, with a note in
docs/kernels.md. Submodules and names not in ``__all__`` are internal and may change at any
time; ``fastnn.kernels.contract`` lists what fastnn's own Python layer uses of them.
``fastnn.kernels.cuda`` has the numba.cuda twin of every name in ``__all__``, with the same
arguments in the same order, on device arrays.
"""
from ._activations import (ACTIVATIONS, activation_backward, activation_backward_bias,
                          activation_forward, bias_activation_forward, derivative_inplace,
                          row_sum, softmax_jvp)
from ._batchnorm import (batch_moments, batchnorm_backward, batchnorm_forward,
                        batchnorm_inference, update_running)
from ._checks import check_layout
from ._dense import (backprop_delta, backprop_inputs, backprop_weights, dense_backward,
                     dense_forward)
from ._dropout import dropout_activation_backward, dropout_backward, dropout_forward
from ._layout import Network, Segments
from ._losses import (LOSSES, binary_crossentropy, categorical_crossentropy, count_correct,
                      exp_poisson, poisson,
                     loss_value_and_grad, mse, sigmoid_binary_cross_entropy,
                     softmax_cross_entropy)
from ._matmul import matmul
from ._network import (INFER, TRAIN, TRAIN_UPDATE, Buffers, backward, beta_view, bias_view,
                      delta_view, forward, forward_backward, gamma_view, gather_batch,
                      output_view, running_mean_view, running_var_view, target_view,
                      weight_view, workspace_size)
from ._optimizers import (OPTIMIZERS, STATE_VECTORS, Update, adagrad_update, adam_update,
                         add_penalty_grad, clip_factor, grad_norm, lamb_update,
                         optimizer_update, rmsprop_update, sgd_update)
from ._random import keep_mask, stream
from ._schedules import learning_rate
from ._training import infer_batches, train_batches

# The types of the public surface, and the plan classes inside a Network, say they live
# here: pickles of them (Numba's cache indices of any compiled function taking them, a
# user's included) then name fastnn.kernels, not a private module that may be renamed.
for _type in (Network, Segments, Buffers, Update):
    _type.__module__ = __name__


def __getattr__(name):
    """Plan classes by name (``Network.plan``'s types; see kernels._plan)."""
    if name.startswith("Plan__"):
        from ._plan import plan_class

        return plan_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    # codes and modes
    "ACTIVATIONS", "LOSSES", "OPTIMIZERS", "STATE_VECTORS", "INFER", "TRAIN", "TRAIN_UPDATE",
    # dense
    "dense_forward", "dense_backward", "backprop_delta", "backprop_weights", "backprop_inputs",
    "matmul",
    # activations
    "activation_forward", "bias_activation_forward", "derivative_inplace",
    "activation_backward", "activation_backward_bias", "softmax_jvp", "row_sum",
    # losses
    "mse", "binary_crossentropy", "categorical_crossentropy", "softmax_cross_entropy",
    "sigmoid_binary_cross_entropy", "poisson", "exp_poisson", "loss_value_and_grad",
    "count_correct",
    # optimizers
    "sgd_update", "adagrad_update", "rmsprop_update", "adam_update", "lamb_update",
    "optimizer_update", "Update", "add_penalty_grad", "grad_norm", "clip_factor",
    "learning_rate",
    # remedies
    "batchnorm_forward", "batchnorm_backward", "batchnorm_inference", "batch_moments",
    "update_running", "dropout_forward", "dropout_backward", "dropout_activation_backward",
    "keep_mask", "stream",
    # networks
    "Network", "Segments", "Buffers", "weight_view", "bias_view", "gamma_view", "beta_view",
    "running_mean_view", "running_var_view", "output_view", "target_view", "delta_view",
    "workspace_size", "gather_batch", "forward", "backward", "forward_backward",
    "train_batches", "infer_batches",
    # checking
    "check_layout",
]
