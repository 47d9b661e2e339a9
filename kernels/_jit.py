"""The one decorator every CPU kernel is compiled with.

``kernel`` is ``numba.njit`` with on-disk caching (a fresh process loads compiled
code in milliseconds instead of recompiling) and the fast-math flags that keep
``isnan``/``isfinite`` meaningful: no ``nnan``/``ninf`` (DESIGN.md, "fastmath").
"""
import numba

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


def kernel(fn=None, **options):
    """Decorate ``fn`` as a cached, GIL-free nopython kernel."""
    settings = {"cache": True, "nogil": True, "fastmath": set(FASTMATH), "error_model": "numpy"}
    settings.update(options)
    if fn is None:
        return lambda f: numba.njit(**settings)(f)
    return numba.njit(**settings)(fn)
