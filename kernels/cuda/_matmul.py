"""Tiled shared-memory matrix product on the device, with the dense layer's fused
bias + activation epilogue: C = f(op(A)·op(B) + bias) (f the identity and no bias for a
plain product), op(M) = M or Mᵀ. One thread per element of C; TILE x TILE blocks stage
tiles of A and B in shared memory.

The transposes are flags of the kernel, which then reads A[k, i] for Aᵀ[i, k]: a
device array's ``.T`` is not a view but a transpose kernel into a new array, so the
backprop rules dW = dZ·Xᵀ and dX = Wᵀ·dZ pass the untransposed arrays."""
from numba import float32, float64

from .._activations import IDENTITY
from . import _config as config
from ._activations import forward_rule
from ._backend import cuda

_KERNELS = {}


def _product_kernel(tile, dtype):
    """The product kernel for one tile size and dtype (shared arrays need constants)."""
    key = (tile, dtype)
    if key not in _KERNELS:
        element = float32 if dtype == "float32" else float64

        @cuda.jit
        def product(A, B, C, bias, code, epilogue, transpose_a, transpose_b):
            sA = cuda.shared.array((tile, tile), element)
            sB = cuda.shared.array((tile, tile), element)
            tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
            row = cuda.blockIdx.x * tile + tx
            col = cuda.blockIdx.y * tile + ty
            M, N = C.shape
            K = A.shape[0] if transpose_a else A.shape[1]
            acc = 0.0
            for t in range((K + tile - 1) // tile):
                k = t * tile + ty
                a = 0.0
                if row < M and k < K:
                    a = A[k, row] if transpose_a else A[row, k]
                sA[tx, ty] = a
                k = t * tile + tx
                b = 0.0
                if k < K and col < N:
                    b = B[col, k] if transpose_b else B[k, col]
                sB[tx, ty] = b
                cuda.syncthreads()
                for q in range(tile):
                    acc += sA[tx, q] * sB[q, ty]
                cuda.syncthreads()
            if row < M and col < N:
                if epilogue:
                    acc = forward_rule(code, acc + bias[row])
                C[row, col] = acc

        _KERNELS[key] = product
    return _KERNELS[key]


def _launch(A, B, C, bias, code, epilogue, transpose_a, transpose_b):
    tile = config.TILE
    grid = ((C.shape[0] + tile - 1) // tile, (C.shape[1] + tile - 1) // tile)
    kernel = _product_kernel(tile, str(C.dtype))
    kernel[grid, (tile, tile)](A, B, C, bias, code, epilogue, transpose_a, transpose_b)


def product_epilogue(A, B, C, bias, code):
    """C = f(A·B + bias); f elementwise (not softmax)."""
    _launch(A, B, C, bias, code, True, False, False)


def matmul(a, b, out):
    """out = a · b."""
    _launch(a, b, out, out[:, 0], IDENTITY, False, False, False)


def matmul_transposed(A, B, C, transpose_a, transpose_b):
    """C = op(A) · op(B), op(M) = Mᵀ where its flag says so (read in place)."""
    _launch(A, B, C, C[:, 0], IDENTITY, False, transpose_a, transpose_b)
