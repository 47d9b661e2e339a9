"""fastnn.kernels.cuda: numba.cuda twins of the CPU kernels, with the same names and
signatures, on device arrays. Importing this package imports CUDA (through
``backend``); ``import fastnn`` never does.

Device functions (callable from kernels only): ``mix64``, ``stream``, ``bits``,
``drop_threshold`` (kernels.random) and ``learning_rate`` (kernels.schedules), whose
host-callable twin is ``host_learning_rate``."""
from .activations import (activation_backward, activation_backward_bias, activation_forward,
                          bias_activation_forward, derivative_inplace, fill, row_sum,
                          softmax_jvp)
from .backend import available, require_cuda
from .batchnorm import (batch_moments, batchnorm_backward, batchnorm_forward,
                        batchnorm_inference, update_running)
from .config import configure
from .dense import (backprop_delta, backprop_inputs, backprop_weights, dense_backward,
                    dense_forward)
from .dropout import dropout_activation_backward, dropout_backward, dropout_forward
from .losses import (binary_crossentropy, categorical_crossentropy, count_correct,
                     loss_value_and_grad, mse, sigmoid_binary_cross_entropy,
                     softmax_cross_entropy)
from .matmul import matmul
from .optimizers import (adagrad_update, adam_update, add_penalty_grad, clip_factor,
                         device_segments, grad_norm, lamb_update, optimizer_update,
                         rmsprop_update, sgd_update)
from .random import bits, drop_threshold, keep_mask, mix64, stream
from .schedules import host_learning_rate, learning_rate
