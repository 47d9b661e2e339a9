"""C = A · B into a preallocated C, through BLAS, for any contiguous layouts.

Numba's ``np.dot(a, b, out)`` calls BLAS gemm (through SciPy) but insists on a
C-ordered ``out``. A (features, batch) activation matrix of fastnn is F-ordered
(it is the user's row-major (batch, features) array seen as its transpose), so an
F-ordered C is computed as Cᵀ = Bᵀ · Aᵀ, which is C-ordered. Transposed views
are free: BLAS reads them with its transpose flags.
"""
import numpy as np
from numba.extending import overload

from ._jit import kernel


def _matmul_layout(a, b, out):  # pragma: no cover - replaced by the overload
    raise NotImplementedError


@overload(_matmul_layout)
def _matmul_layout_impl(a, b, out):
    if out.layout == "C":
        return lambda a, b, out: np.dot(a, b, out)
    if out.layout == "F":
        return lambda a, b, out: np.dot(b.T, a.T, out.T)
    return None


@kernel
def matmul(A, B, C):
    """C = A · B (BLAS gemm); A, B, C contiguous, C not aliasing A or B."""
    _matmul_layout(A, B, C)
