"""The dense layer Y = f(W·X + b) and its three backprop rules.

Shapes (docs/design.md, "Math conventions"): X (in, batch), W (out, in), b (out,),
Y (out, batch).

    forward    Y  = f(W·X + b)          one gemm, then the fused bias + f epilogue
    backward   dZ = dY ⊙ f'(Z)           fused with db = row-sum(dZ)
               dW = dZ · Xᵀ
               dX = Wᵀ · dZ
"""
from ._jit import kernel
from ._activations import activation_backward_bias, bias_activation_forward
from ._matmul import matmul


@kernel
def dense_forward(W, b, X, act, Y):
    """Y = f(W·X + b), f given by its activation code ``act``."""
    matmul(W, X, Y)
    bias_activation_forward(Y, b, act)


@kernel
def backprop_delta(act, A, dA, dZ, db):
    """dZ = dA ⊙ f'(Z) (from the layer's output A) and db = row-sum(dZ)."""
    activation_backward_bias(act, A, dA, dZ, db)


@kernel
def backprop_weights(dZ, X, dW):
    """dW = dZ · Xᵀ."""
    matmul(dZ, X.T, dW)


@kernel
def backprop_inputs(W, dZ, dX):
    """dX = Wᵀ · dZ."""
    matmul(W.T, dZ, dX)


@kernel
def dense_backward(W, X, A, dA, act, dZ, dW, db, dX):
    """All three rules of one layer: dZ, db, dW and dX (dZ may be dA)."""
    backprop_delta(act, A, dA, dZ, db)
    backprop_weights(dZ, X, dW)
    backprop_inputs(W, dZ, dX)
