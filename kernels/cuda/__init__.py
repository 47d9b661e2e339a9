"""fastnn.kernels.cuda: numba.cuda twins of the CPU kernels, with the same names and
signatures, on device arrays. Importing this package imports CUDA (through
``backend``); ``import fastnn`` never does.

Device functions (callable from kernels only): ``mix64``, ``stream``, ``bits``,
``drop_threshold`` (kernels._random) and ``learning_rate`` (kernels._schedules), whose
host-callable twin is ``host_learning_rate``."""
from ._activations import (activation_backward, activation_backward_bias, activation_forward,
                          bias_activation_forward, derivative_inplace, fill, row_sum,
                          softmax_jvp)
from ._backend import available, require_cuda
from ._batchnorm import (batch_moments, batchnorm_backward, batchnorm_forward,
                        batchnorm_inference, update_running)
from ._config import configure
from ._dense import (backprop_delta, backprop_inputs, backprop_weights, dense_backward,
                    dense_forward)
from ._dropout import dropout_activation_backward, dropout_backward, dropout_forward
from ._losses import (binary_crossentropy, categorical_crossentropy, count_correct,
                     loss_value_and_grad, mse, sigmoid_binary_cross_entropy,
                     softmax_cross_entropy)
from ._matmul import matmul
from ._optimizers import (adagrad_update, adam_update, add_penalty_grad, clip_factor,
                         device_segments, grad_norm, lamb_update, optimizer_update,
                         rmsprop_update, sgd_update)
from ._random import bits, drop_threshold, keep_mask, mix64, stream
from ._schedules import host_learning_rate, learning_rate
