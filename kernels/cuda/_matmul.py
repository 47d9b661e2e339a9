"""Tiled shared-memory matrix product on the device, with the dense layer's fused
bias + activation epilogue: C = f(A·B + bias) (f the identity and no bias for a
plain product). One thread per element of C; TILE x TILE blocks stage tiles of A and
B in shared memory."""
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
        def product(A, B, C, bias, code, epilogue):
            sA = cuda.shared.array((tile, tile), element)
            sB = cuda.shared.array((tile, tile), element)
            tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
            row = cuda.blockIdx.x * tile + tx
            col = cuda.blockIdx.y * tile + ty
            M, K = A.shape
            N = B.shape[1]
            acc = 0.0
            for t in range((K + tile - 1) // tile):
                k = t * tile + ty
                sA[tx, ty] = A[row, k] if row < M and k < K else 0.0
                k = t * tile + tx
                sB[tx, ty] = B[k, col] if k < K and col < N else 0.0
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


def product_epilogue(A, B, C, bias, code):
    """C = f(A·B + bias); f elementwise (not softmax)."""
    tile = config.TILE
    grid = ((C.shape[0] + tile - 1) // tile, (C.shape[1] + tile - 1) // tile)
    kernel = _product_kernel(tile, str(C.dtype))
    kernel[grid, (tile, tile)](A, B, C, bias, code, True)


def matmul(A, B, C):
    """C = A · B."""
    tile = config.TILE
    grid = ((C.shape[0] + tile - 1) // tile, (C.shape[1] + tile - 1) // tile)
    kernel = _product_kernel(tile, str(C.dtype))
    kernel[grid, (tile, tile)](A, B, C, C[:, 0], IDENTITY, False)
