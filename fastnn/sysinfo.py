"""``fastnn info``: what decides fastnn's speed on this machine."""
import json
import os
import platform

from fastnn.kernels.contract import (DOT_FORM_LIMIT, OPENBLAS_CORE_WIDTH, OUTER_FORM_LIMIT,
                                     PARALLEL_PRODUCT, PARALLEL_WEIGHTS, SPLIT_PRODUCT)
from fastnn.version import __version__

ENV_VARS = ("OPENBLAS_CORETYPE", "FASTNN_MATMUL_CROSSOVER", "OPENBLAS_NUM_THREADS",
            "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER",
            "OMP_WAIT_POLICY", "NUMBA_CACHE_DIR")
_ORDER = ["sse3", "ssse3", "sse4_2", "avx", "avx2", "avx512f"]


def cpu():
    """(model name, sorted vector extensions of interest) from /proc/cpuinfo."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and name in ("", platform.machine(), "x86_64"):
                    name = value.strip()
                elif key.strip() in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    wanted = {"sse3": "pni", "ssse3": "ssse3", "sse4_2": "sse4_2", "avx": "avx", "fma": "fma",
              "avx2": "avx2", "avx512f": "avx512f", "avx512bw": "avx512bw",
              "avx512vl": "avx512vl", "avx512_bf16": "avx512_bf16", "neon": "asimd"}
    return name, sorted(k for k, flag in wanted.items() if flag in flags)


def blas_pools():
    """Every BLAS/OpenMP pool loaded once fastnn's products are ready to run."""
    import scipy.linalg.cython_blas  # noqa: F401  the BLAS Numba's np.dot calls
    from threadpoolctl import threadpool_info

    return [{"library": os.path.basename(p.get("filepath", "")), "api": p.get("user_api"),
             "version": p.get("version"), "core_type": p.get("architecture"),
             "threads": p.get("num_threads"), "threading": p.get("threading_layer")}
            for p in threadpool_info()]


def pinned_below_cpu(pools, extensions):
    """Warnings for OpenBLAS pools whose core type uses narrower vectors than the CPU has."""
    best = max((e for e in extensions if e in _ORDER), key=_ORDER.index, default=None)
    warnings = []
    for pool in pools:
        width = OPENBLAS_CORE_WIDTH.get(str(pool.get("core_type") or "").lower())
        if best and width and _ORDER.index(width) < _ORDER.index(best):
            how = ("OPENBLAS_CORETYPE=" + os.environ["OPENBLAS_CORETYPE"]
                   if os.environ.get("OPENBLAS_CORETYPE") else "its build")
            warnings.append(f"{pool['library']} runs {pool['core_type']} kernels ({width}) on a "
                            f"CPU with {best}: pinned by {how}; unset it for full speed")
    return warnings


def collect():
    """Everything ``fastnn info`` prints, as a dict (also saved with benchmark results)."""
    import numba
    import numpy
    import scipy

    from fastnn.threads import get_num_threads

    name, extensions = cpu()
    pools = blas_pools()
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        layer = f"not started (configured: {numba.config.THREADING_LAYER})"
    return {
        "fastnn": __version__, "python": platform.python_version(),
        "numpy": numpy.__version__, "scipy": scipy.__version__, "numba": numba.__version__,
        "llvmlite": __import__("llvmlite").__version__,
        "cpu": name, "cores": os.cpu_count(), "vector_extensions": extensions,
        "blas": pools, "fastnn_blas_threads": get_num_threads(),
        "matmul_loops_limits": {"dot": DOT_FORM_LIMIT,
                                "outer": OUTER_FORM_LIMIT},
        "numba_threading_layer": layer, "numba_threads": numba.get_num_threads(),
        "parallel_weights": PARALLEL_WEIGHTS, "parallel_product": PARALLEL_PRODUCT,
        "split_product": SPLIT_PRODUCT,
        "environment": {k: os.environ[k] for k in ENV_VARS if k in os.environ},
        "warnings": pinned_below_cpu(pools, extensions),
    }


def main(args=None):
    info = collect()
    if getattr(args, "json", False):
        print(json.dumps(info, indent=2))
        return 0
    for key in ("fastnn", "python", "numpy", "scipy", "numba", "llvmlite"):
        print(f"{key:<22}{info[key]}")
    print(f"{'cpu':<22}{info['cpu']} ({info['cores']} cores)")
    print(f"{'vector extensions':<22}{' '.join(info['vector_extensions']) or '?'}")
    for pool in info["blas"]:
        print(f"{'pool ' + str(pool['api']):<22}{pool['library']} {pool['version']}  core type "
              f"{pool['core_type']}  threads {pool['threads']}  ({pool['threading']})")
    print(f"{'fastnn BLAS threads':<22}{info['fastnn_blas_threads']}")
    limits = info["matmul_loops_limits"]
    print(f"{'matmul loops up to':<22}m·k·n {limits['dot']} forward, {limits['outer']} dW and dX "
          f"(BLAS above)")
    print(f"{'numba threading':<22}{info['numba_threading_layer']}, "
          f"{info['numba_threads']} threads: networks whose widest layer has "
          f"{info['parallel_weights']} weights, or whose largest product has "
          f"{info['parallel_product']} multiply-adds at the batch size, split their products, "
          f"updates, epilogues and gather across them (BLAS at one thread meanwhile); "
          f"smaller ones without BatchNorm or Dropout whose largest product has "
          f"{info['split_product']} train with each minibatch split by samples across them")
    for key, value in info["environment"].items():
        print(f"{'env ' + key:<22}{value}")
    for warning in info["warnings"]:
        print(f"WARNING: {warning}")
    return 0
