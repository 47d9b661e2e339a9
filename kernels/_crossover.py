"""Where matmul leaves its hand-written loops for BLAS: the crossover in m·k·n of each
loop form, picked at import for the BLAS this process will call.

Measured with ``scripts/crossover.py`` (2 cores, float32, the dense layer's products):

    BLAS kernels                      dot form (forward)   outer form (dW, dX)
    AVX2   (OpenBLAS Haswell, Zen 3)  level at 32³         ahead up to 96³
    AVX-512 (OpenBLAS SkylakeX, Zen 4) level at 16³         ahead up to 8³ only:
                                      OpenBLAS's AVX-512 small-matrix kernels
                                      run 16³-64³ at 28-78 GFLOP/s forward,
                                      60-114 dW and dX, on one core

OpenBLAS picks its AVX-512 kernels when the CPU has AVX-512F, unless the environment
pins it (``OPENBLAS_CORETYPE``) to an older core. ``FASTNN_MATMUL_CROSSOVER=dot,outer``
overrides both limits (``scripts/crossover.py`` prints the values it measured). The
limits are compiled into the kernels, so they are part of the kernel cache's stamp.
"""
import os

import llvmlite.binding as llvm
import numba

#: (dot form, outer form) limits in m·k·n, by the vector width of the BLAS kernels
CROSSOVERS = {"avx2": (32 ** 3, 96 ** 3), "avx512": (16 ** 3, 8 ** 3)}
#: OpenBLAS core types (lower case) and the widest vector extension their kernels use
OPENBLAS_CORE_WIDTH = {"haswell": "avx2", "zen": "avx2", "skylakex": "avx512f",
                       "cooperlake": "avx512f", "sapphirerapids": "avx512f", "sandybridge": "avx",
                       "nehalem": "sse4_2", "prescott": "sse3", "core2": "ssse3"}
OVERRIDE = "FASTNN_MATMUL_CROSSOVER"


def host_has_avx512():
    """Whether the CPU Numba compiles for has AVX-512F."""
    if numba.config.CPU_FEATURES:
        return "+avx512f" in numba.config.CPU_FEATURES.split(",")
    return bool(llvm.get_host_cpu_features().get("avx512f"))


def blas_vector_class(avx512, coretype):
    """'avx512' or 'avx2': the widest vectors OpenBLAS uses on this CPU and core pin."""
    if not avx512:
        return "avx2"
    if coretype and OPENBLAS_CORE_WIDTH.get(coretype.strip().lower()) != "avx512f":
        return "avx2"  # pinned to a core without AVX-512 kernels (or one we don't know)
    return "avx512"


def parse_override(text):
    """(dot, outer) from ``FASTNN_MATMUL_CROSSOVER``'s "dot,outer" (non-negative ints)."""
    try:
        dot, outer = (int(part) for part in text.split(","))
    except ValueError:
        dot = outer = -1
    if dot < 0 or outer < 0:
        raise ValueError(f"{OVERRIDE} must be two non-negative integers 'dot,outer' "
                         f"(m·k·n limits), got {text!r}")
    return dot, outer


def select(avx512, coretype, override):
    """(dot form limit, outer form limit) for a CPU, an OpenBLAS pin and an override."""
    if override:
        return parse_override(override)
    return CROSSOVERS[blas_vector_class(avx512, coretype)]


DOT_FORM_LIMIT, OUTER_FORM_LIMIT = select(
    host_has_avx512(), os.environ.get("OPENBLAS_CORETYPE"), os.environ.get(OVERRIDE))
