"""C = A · B into a preallocated C, for the layouts of the dense layer: two paths.

    matmul_blas    BLAS gemm (SciPy's, as Numba's np.dot calls it): fastest for big products
    matmul_loops   hand-written register-tiled loops: no call, packing or threading
                   overhead, fastest for small products
    matmul         matmul_loops up to the measured crossover in m·k·n, else matmul_blas

The crossovers (DOT_FORM_LIMIT, OUTER_FORM_LIMIT, one per loop form) depend on the
BLAS the process calls: ``kernels._crossover`` picks them. Every path takes contiguous
A, B, C in either order. An F-ordered
C (fastnn's (features, batch) activations are the row-major (batch, features)
arrays seen transposed) is computed as the C-ordered Cᵀ = Bᵀ · Aᵀ; transposed views
are free. With C C-ordered, the loops take one of two forms, both reading memory
in order and vectorizing along its contiguous axis:

    dot form    A row-major, B column-major:  C[i, j] = A[i, :] · B[:, j]
                (the forward product); a 2 x 4 tile of C accumulates in registers
    outer form  B row-major (any A):          C[i, :] += A[i, k] B[k, :]
                (dW = dZ·Xᵀ and dX = Wᵀ·dZ); four rows of C share each load of B
"""
import numba
import numpy as np
from numba.core import cgutils, types
from numba.extending import intrinsic

import numba.np.linalg  # noqa: F401  (registers Numba's BLAS helpers, numba_xxgemm among them)

from ._jit import internal_overload, kernel
from ._tasks import run, unpack
from ._views import any_layout
from ._crossover import DOT_FORM_LIMIT, OUTER_FORM_LIMIT


@kernel
def _dot_form(A, Bt, C):
    """C[i, j] = sum_k A[i, k] Bt[j, k]; A, Bt row-major, C any strides."""
    M, K = A.shape
    N = Bt.shape[0]
    zero = C.dtype.type(0)
    for i in range(0, M - M % 2, 2):
        a0, a1 = A[i], A[i + 1]
        for j in range(0, N - N % 4, 4):
            b0, b1, b2, b3 = Bt[j], Bt[j + 1], Bt[j + 2], Bt[j + 3]
            s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
            for k in range(K):
                x0, x1 = a0[k], a1[k]
                s00 += x0 * b0[k]
                s01 += x0 * b1[k]
                s02 += x0 * b2[k]
                s03 += x0 * b3[k]
                s10 += x1 * b0[k]
                s11 += x1 * b1[k]
                s12 += x1 * b2[k]
                s13 += x1 * b3[k]
            C[i, j], C[i, j + 1], C[i, j + 2], C[i, j + 3] = s00, s01, s02, s03
            C[i + 1, j], C[i + 1, j + 1], C[i + 1, j + 2], C[i + 1, j + 3] = s10, s11, s12, s13
        for j in range(N - N % 4, N):
            _dot_row(A, Bt, C, i, j)
            _dot_row(A, Bt, C, i + 1, j)
    for i in range(M - M % 2, M):
        for j in range(N):
            _dot_row(A, Bt, C, i, j)


@kernel(inline="always")
def _dot_row(A, Bt, C, i, j):
    a, b = A[i], Bt[j]
    s = C.dtype.type(0)
    for k in range(a.shape[0]):
        s += a[k] * b[k]
    C[i, j] = s


@kernel
def _outer_form(A, B, C):
    """C[i, :] = sum_k A[i, k] B[k, :]; B, C row-major, A any strides.

    Two rows of C take four rows of B per pass: 8 multiply-adds per 6 loads and 2 stores.
    """
    M, K = A.shape
    zero = C.dtype.type(0)
    for i in range(M):   # loops, not C[:, :] = 0: a slice assignment compiles its broadcast
        c = C[i]         # checks and their messages (half of this kernel's compile time)
        for j in range(c.shape[0]):
            c[j] = zero
    K4 = K - K % 4
    for i in range(0, M - M % 2, 2):
        c0, c1 = C[i], C[i + 1]
        for k in range(0, K4, 4):
            b0, b1, b2, b3 = B[k], B[k + 1], B[k + 2], B[k + 3]
            x00, x01, x02, x03 = A[i, k], A[i, k + 1], A[i, k + 2], A[i, k + 3]
            x10, x11, x12, x13 = A[i + 1, k], A[i + 1, k + 1], A[i + 1, k + 2], A[i + 1, k + 3]
            for j in range(c0.shape[0]):
                c0[j] += x00 * b0[j] + x01 * b1[j] + x02 * b2[j] + x03 * b3[j]
                c1[j] += x10 * b0[j] + x11 * b1[j] + x12 * b2[j] + x13 * b3[j]
        for k in range(K4, K):
            _axpy(A[i, k], B[k], c0)
            _axpy(A[i + 1, k], B[k], c1)
    for i in range(M - M % 2, M):
        for k in range(K):
            _axpy(A[i, k], B[k], C[i])


@kernel(inline="always")
def _axpy(x, b, c):
    for j in range(c.shape[0]):
        c[j] += x * b[j]


def _loops_c(A, B, C):  # pragma: no cover - replaced by the overload
    raise NotImplementedError


@internal_overload(_loops_c)
def _loops_c_impl(A, B, C):
    """Pick the loop form from the layouts, at compile time (C is C-ordered)."""
    if B.layout == "C":   # one compile for the C- and F-ordered A of dX and dW
        return lambda A, B, C: _outer_form(any_layout(A), B, C)
    if A.layout == "C" and B.layout == "F":
        return lambda A, B, C: _dot_form(A, B.T, C)
    if B.layout == "F":
        return lambda A, B, C: _outer_form_column_major_b(A, B, C)
    return None


@kernel
def _outer_form_column_major_b(A, B, C):
    """C = A · B with B column-major and A not row-major (never the dense layer's
    general case). A B with one row or column is row-major too; otherwise plain loops."""
    K, N = B.shape
    if K == 1 or N == 1:
        _outer_form(any_layout(A), B.T.reshape(K, N), C)
        return
    for i in range(A.shape[0]):
        for j in range(N):
            s = C.dtype.type(0)
            for k in range(K):
                s += A[i, k] * B[k, j]
            C[i, j] = s


#: Numba's own BLAS entry (what its np.dot calls): xxgemm(kind, transa, transb, m, n, k,
#: &alpha, a, lda, b, ldb, &beta, c, ldc), column-major, kind 's' or 'd'. Calling it
#: directly skips np.dot's shape checks and their error-message machinery, a fifth of
#: a cold compile's signatures (the shapes are the network's own: always consistent).
_xxgemm = types.ExternalFunction("numba_xxgemm", types.intc(
    types.char, types.char, types.char, types.intp, types.intp, types.intp, types.voidptr,
    types.voidptr, types.intp, types.voidptr, types.intp, types.voidptr, types.voidptr,
    types.intp))

#: BLAS's trans arguments as the bytes it reads (ord() inside a kernel would compile
#: Numba's string functions)
_NO_TRANSPOSE, _TRANSPOSE = np.int8(ord("n")), np.int8(ord("t"))


@kernel(inline="always")
def _strided_operand(X):
    """(trans, ld) with which BLAS's column-major view of the row- or column-major
    strided X reads Xᵀ (X may be a block of a contiguous matrix)."""
    item = X.itemsize
    if X.shape[1] == 1 or X.strides[1] == item:         # rows contiguous
        return _NO_TRANSPOSE, max(X.shape[1], X.strides[0] // item, 1)
    return _TRANSPOSE, max(X.shape[0], X.strides[1] // item, 1)


def _gemm_kind(C):  # pragma: no cover - replaced by the overload
    raise NotImplementedError


@internal_overload(_gemm_kind)
def _gemm_kind_impl(C):
    """BLAS's kind byte ('s' or 'd') of C's dtype."""
    kind = np.int8(ord("s" if str(C.dtype) == "float32" else "d"))
    return lambda C: kind


@intrinsic
def _pointer_to(typingctx, value):
    """A pointer to a copy of the scalar ``value`` on the calling function's stack (BLAS
    takes alpha and beta by pointer; global arrays of them would make the code of a
    parallel region calling BLAS uncacheable)."""
    def codegen(context, builder, sig, args):
        slot = cgutils.alloca_once_value(builder, args[0])
        return builder.bitcast(slot, cgutils.voidptr_t)
    return types.voidptr(value), codegen


@kernel
def _blas_gemm(A, B, C):
    """C = A · B by BLAS gemm, computed as the column-major Cᵀ = Bᵀ · Aᵀ: C row-major, A
    and B row- or column-major, each with any leading dimension (a contiguous matrix, or
    a block of one: matmul_parallel's)."""
    M, K = A.shape
    N = B.shape[1]
    ta, lda = _strided_operand(A)
    tb, ldb = _strided_operand(B)
    kind = _gemm_kind(C)
    one, zero = _pointer_to(C.dtype.type(1)), _pointer_to(C.dtype.type(0))
    if _xxgemm(kind, tb, ta, N, M, K, one, B.ctypes, ldb, A.ctypes, lda, zero,
               C.ctypes, max(N, C.strides[0] // C.itemsize, 1)) != 0:   # -1: no BLAS
        raise RuntimeError("BLAS gemm unavailable: fastnn needs SciPy's BLAS")


def _as_c_ordered(a, b, out):  # pragma: no cover - replaced by the overload
    raise NotImplementedError


@internal_overload(_as_c_ordered)
def _as_c_ordered_impl(a, b, out):
    """(A, B, C) with C = A · B and C C-ordered: (a, b, out) or (bᵀ, aᵀ, outᵀ)."""
    if out.layout == "C":
        return lambda a, b, out: (a, b, out)
    if out.layout == "F":
        return lambda a, b, out: (b.T, a.T, out.T)
    return None


@kernel
def matmul_blas(a, b, out):
    """out = a · b through BLAS gemm; a, b, out contiguous, out not aliasing a or b."""
    A, B, C = _as_c_ordered(a, b, out)
    _blas_gemm(any_layout(A), any_layout(B), any_layout(C))


@kernel
def matmul_loops(a, b, out):
    """out = a · b through the register-tiled loops; a, b, out contiguous, no aliasing."""
    A, B, C = _as_c_ordered(a, b, out)
    _loops_c(A, B, C)


def _loops_limit(B):  # pragma: no cover - replaced by the overload
    raise NotImplementedError


@internal_overload(_loops_limit)
def _loops_limit_impl(B):
    """The crossover of the loop form that _loops_c picks for this B (C C-ordered)."""
    limit = OUTER_FORM_LIMIT if B.layout == "C" else DOT_FORM_LIMIT
    return lambda B: limit


@kernel
def matmul(a, b, out):
    """out = a · b: the loops up to their form's crossover in m·k·n, else BLAS."""
    A, B, C = _as_c_ordered(a, b, out)
    if A.shape[0] * A.shape[1] * B.shape[1] <= _loops_limit(B):
        _loops_c(A, B, C)
    else:
        _blas_gemm(any_layout(A), any_layout(B), any_layout(C))


# ------------------------------------------------------------------ parallel product
#: matmul_parallel's blocks have at least this many rows or columns of C
MIN_BLOCK = 32
#: m·k·n from which matmul_parallel splits a product across threads (below: matmul).
#: Measured (2 threads against 1, BLAS at one thread, float32, n x n x n): 0.6× at 32³,
#: 0.8× at 48³, 1.1-1.2× at 64³, 1.4-1.6× at 96³, 1.6× at 128³, 1.8× at 192³
PARALLEL_WORK = 1 << 18

#: the blocks a parallel product is split into (a network's ``parts``): as many as the
#: threads Numba's pool starts with (NUMBA_NUM_THREADS), whatever set_num_threads says
#: later — a run-time value, not compiled in, so every pool size shares one compiled set.
#: Each block is one BLAS call, and OpenBLAS's sgemm rounds an element differently
#: depending on the block it lies in (measured, Haswell kernels: a 512x64x512 product
#: split into column halves differs from the whole by 1e-5), so the partition, and with it
#: every bit of the result, must not depend on the threads in use.
PARTS = numba.config.NUMBA_NUM_THREADS


@kernel
def _blocks(A, B, C, blocks, by_rows):
    """C = A · B as ``blocks`` products spread over the threads: of row blocks of A and C,
    or of column blocks of B and C (sizes multiples of 16). No sum crosses a block: each
    element of C is one block's dot product."""
    M, N = C.shape
    extent = M if by_rows else N
    size = ((extent + blocks - 1) // blocks + 15) // 16 * 16
    run(_block, blocks, (A, B, C, extent, size, by_rows))


@kernel
def _block(q, args):
    """Block q of _blocks."""
    A, B, C, extent, size, by_rows = unpack(args)
    lo = min(extent, q * size)
    hi = min(extent, lo + size)
    if hi > lo:
        if by_rows:
            _blas_gemm(A[lo:hi], B, C[lo:hi])
        else:
            _blas_gemm(A, B[:, lo:hi], C[:, lo:hi])


@kernel
def matmul_parallel(a, b, out, parts):
    """out = a · b split across Numba's threads from PARALLEL_WORK m·k·n: ``parts`` blocks
    (a network's: one per thread of the pool at launch, PARTS), each a single-threaded
    BLAS call (BLAS must run one thread meanwhile: fastnn.threads.one_pool), along the
    longer side of the C-ordered product — so each thread packs its share of the larger
    operand and all of the smaller. Below, ``matmul``. The blocks do not depend on the
    threads in use, so neither does the result (tested)."""
    A, B, C = _as_c_ordered(a, b, out)
    M, N = C.shape
    by_rows = M >= N
    blocks = min(parts, max(M, N) // MIN_BLOCK)
    if blocks > 1 and M * A.shape[1] * N >= PARALLEL_WORK:
        _blocks(any_layout(A), any_layout(B), any_layout(C), blocks, by_rows)
    else:
        matmul(a, b, out)
