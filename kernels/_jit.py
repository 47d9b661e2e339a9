"""The one decorator every CPU kernel is compiled with.

``kernel`` is ``numba.njit`` with on-disk caching (a fresh process loads compiled
code in milliseconds instead of recompiling) and the fast-math flags that keep
``isnan``/``isfinite`` meaningful: no ``nnan``/``ninf`` (DESIGN.md, "fastmath").

Numba validates a cached function against its *own* source file only, so a kernel
that calls kernels of other modules would keep running stale compiled code after
those modules change (or after fastnn is upgraded). Kernels are therefore cached
under one stamp: a hash of every CPU source file of ``fastnn.kernels`` (not of the CUDA
twins in ``kernels/cuda``, which the CPU kernels never call) and of the matmul
crossovers compiled into them (which the environment can change: ``kernels.crossover``).
"""
import hashlib
import os

import numba
from numba.core import caching

from .crossover import DOT_FORM_LIMIT, OUTER_FORM_LIMIT

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
KERNEL_DIR = os.path.dirname(os.path.abspath(__file__))


def _sources_digest(top=KERNEL_DIR):
    digest = hashlib.sha256(f"{numba.__version__} {DOT_FORM_LIMIT} {OUTER_FORM_LIMIT}".encode())
    for root, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d != "cuda")  # CPU kernels never import the twins
        for name in sorted(files):
            if name.endswith(".py"):
                digest.update(name.encode())
                with open(os.path.join(root, name), "rb") as f:
                    digest.update(f.read())
    return digest.digest()


SOURCES_DIGEST = _sources_digest()


def _kernel_set_locator(base):
    """``base`` locator, restricted to fastnn's kernels, stamped with SOURCES_DIGEST."""

    class KernelSetLocator(base):
        def get_source_stamp(self):
            return SOURCES_DIGEST

        @classmethod
        def from_function(cls, py_func, py_file):
            if not os.path.abspath(py_file).startswith(KERNEL_DIR + os.sep):
                return None
            return super().from_function(py_func, py_file)

    KernelSetLocator.__name__ = "KernelSet" + base.__name__.lstrip("_")
    return KernelSetLocator


def _install_locators():
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl")
    names = ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator")
    bases = [getattr(caching, n, None) or getattr(caching, "_" + n, None) for n in names]
    ours = [_kernel_set_locator(b) for b in bases if b is not None]
    if not any(getattr(c, "__name__", "").startswith("KernelSet") for c in impl._locator_classes):
        impl._locator_classes[:0] = ours


_install_locators()


def kernel(fn=None, **options):
    """Decorate ``fn`` as a cached, GIL-free nopython kernel."""
    settings = {"cache": True, "nogil": True, "fastmath": set(FASTMATH), "error_model": "numpy"}
    settings.update(options)
    if fn is None:
        return lambda f: numba.njit(**settings)(f)
    return numba.njit(**settings)(fn)
