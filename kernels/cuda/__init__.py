"""fastnn.kernels.cuda: numba.cuda twins of the CPU kernels, with the same names and
signatures, on device arrays. Importing this package imports CUDA (through
``backend``); ``import fastnn`` never does."""
from .activations import (activation_backward, activation_backward_bias, activation_forward,
                          bias_activation_forward, row_sum, softmax_jvp)
from .backend import available, require_cuda
from .config import configure
from .dense import (backprop_delta, backprop_inputs, backprop_weights, dense_backward,
                    dense_forward)
from .losses import (binary_crossentropy, categorical_crossentropy, count_correct,
                     loss_value_and_grad, mse, sigmoid_binary_cross_entropy,
                     softmax_cross_entropy)
from .matmul import matmul
from .optimizers import (adagrad_update, adam_update, add_penalty_grad, optimizer_update,
                         rmsprop_update, sgd_update)
