"""CUDA twins of fastnn.kernels._dense: Y = f(W·X + b) and its three backprop rules."""
from .._activations import SOFTMAX
from ._activations import activation_backward_bias, bias_activation_forward
from ._matmul import matmul, matmul_transposed, product_epilogue


def dense_forward(W, b, X, act, Y):
    """Y = f(W·X + b): one tiled product with the bias + activation fused in
    (softmax, which needs whole columns, runs after it)."""
    if act == SOFTMAX:
        matmul(W, X, Y)
        bias_activation_forward(Y, b, SOFTMAX)
    else:
        product_epilogue(W, X, Y, b, act)


def backprop_delta(act, A, dA, dZ, db):
    """dZ = dA ⊙ f'(Z) (from the output A) and db = row-sum(dZ)."""
    activation_backward_bias(act, A, dA, dZ, db)


def backprop_weights(dZ, X, dW):
    """dW = dZ · Xᵀ."""
    matmul_transposed(dZ, X, dW, False, True)


def backprop_inputs(W, dZ, dX):
    """dX = Wᵀ · dZ."""
    matmul_transposed(W, dZ, dX, True, False)


def dense_backward(W, X, A, dA, act, dZ, dW, db, dX):
    """All three rules of one layer."""
    backprop_delta(act, A, dA, dZ, db)
    backprop_weights(dZ, X, dW)
    backprop_inputs(W, dZ, dX)

