"""The one decorator every CPU kernel is compiled with.

``kernel`` is ``numba.njit`` with the fast-math flags that keep ``isnan``/``isfinite``
meaningful (no ``nnan``/``ninf``: docs/design.md, "fastmath"), without Numba's runtime
(``_nrt=False``: kernels only write into arrays they are given, so no reference counts
are kept — a kernel that allocated would not compile; a kernel returns scalars, never a
view, since a view returned without a reference to a caller compiled with the runtime
would be released once too often), and cached on disk where Python calls it.

Cold compile time (scripts/compile_times.py) is spent by Numba typing and lowering each
function and by LLVM optimising and generating machine code for each *library*: a
dispatcher's function linked with every function it calls. Compiled normally, each of
the nested kernels of an epoch would be optimised and turned into machine code on its
own and again inside each caller, a dozen times over for the innermost. So:

- internal kernels (most of them: only other kernels call them) are *link-only*
  (``LinkOnlyLibrary``): their LLVM IR is linked into their callers, never optimised as a
  module nor compiled to machine code alone; they have no CPython wrapper and are not
  cached (their code lives in the cached entry points). A Python call of one runs its
  *entry twin*: the same function compiled normally, on first use, with its own cache.
- ``kernel(entry=True)`` marks the entry points the model layer calls (the epoch,
  evaluation, updates): compiled, optimised once as a whole and cached;
  ``inline="always"`` kernels are inlined into their callers by Numba.
- ``internal_overload`` is ``numba.extending.overload`` for implementations only
  kernels call: link-only too.
- kernels that dispatch on a kind (optimizer, loss, BatchNorm, Dropout, clipping) pick
  it from the model's plan while compiling (``kernels._plan``): what a model does not use
  is never compiled for it.

Numba validates a cached function against its *own* source file only, so a kernel
that calls kernels of other modules would keep running stale compiled code after
those modules change (or after fastnn is upgraded). Kernels are therefore cached
under one stamp: a hash of every CPU source file of ``fastnn.kernels`` (not of the CUDA
twins in ``kernels/cuda``, which the CPU kernels never call), of the matmul
crossovers compiled into them (which the environment can change: ``kernels._crossover``),
each stamp in a folder of its own. The pool's size is not in it: the partition of parallel
work is a run-time value (``Network.parts``), so a process started with another
NUMBA_NUM_THREADS — a joblib worker, an MPI rank — loads the kernels its parent compiled.
"""
import hashlib
import os
import types

import numba
from numba.core import caching
from numba.core.codegen import JITCodeLibrary
from numba.core.compiler import Compiler
from numba.core.compiler_lock import require_global_compiler_lock
from numba.core.registry import CPUDispatcher
from numba.extending import overload

from ._crossover import DOT_FORM_LIMIT, OUTER_FORM_LIMIT

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
    """``base`` locator, restricted to fastnn's kernels, stamped with SOURCES_DIGEST, in a
    folder of that stamp's own: Numba unpickles a cache index before it compares the
    stamp, so an index written by other sources (whose argument types may name classes
    these sources no longer have) must never be read."""

    class KernelSetLocator(base):
        def get_source_stamp(self):
            return SOURCES_DIGEST

        def get_cache_path(self):
            return os.path.join(super().get_cache_path(), "fastnn-" + SOURCES_DIGEST.hex()[:16])

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


class _NoEnvCodegen:
    """The codegen, as a link-only library shows it: no environment to set (its code is
    never loaded on its own)."""

    def __init__(self, codegen):
        self._codegen = codegen

    def set_env(self, env_name, env):
        pass

    def __getattr__(self, name):
        return getattr(self._codegen, name)


class LinkOnlyLibrary(JITCodeLibrary):
    """The code of an internal kernel: LLVM IR to be linked into its callers, never
    optimised as a module nor compiled to machine code on its own."""

    def finalize(self):
        require_global_compiler_lock()
        self._raise_if_finalized()
        seen = set()
        for library in self._linking_libraries:
            if library not in seen:
                seen.add(library)
                self._reload_init.update(library._reload_init)
                self._final_module.link_in(library._get_module_for_linking(), preserve=True)
        self._finalize_dynamic_globals()
        self._finalized = True

    def get_pointer_to_function(self, name):
        self._ensure_finalized()
        return 0

    @property
    def codegen(self):
        return _NoEnvCodegen(self._codegen)


class _InternalCompiler(Compiler):
    def compile_extra(self, func):
        self.state.library = LinkOnlyLibrary(self.state.targetctx.codegen(), func.__qualname__)
        return super().compile_extra(func)


class InternalKernel(CPUDispatcher):
    """The dispatcher of a link-only kernel (no CPython wrapper, no machine code of its
    own), whose Python calls go to its entry twin (compiled normally on first use)."""

    _entry = None

    def __call__(self, *args, **kwargs):
        entry = self._entry
        if entry is None:
            entry = self._entry = _entry_twin(self)
        return entry(*args, **kwargs)


def _entry_twin(dispatcher):
    fn = dispatcher.py_func
    twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__,
                              fn.__closure__)
    twin.__qualname__ = fn.__qualname__ + "__entry"   # its own cache index and data files
    twin.__module__, twin.__doc__ = fn.__module__, fn.__doc__
    options = {k: v for k, v in dispatcher.targetoptions.items()
               if k not in ("no_cpython_wrapper", "no_cfunc_wrapper", "nopython")}
    return numba.njit(cache=True, **options)(twin)


def specialized(template, name, **names):
    """A copy of function ``template`` named ``name`` (its own cache files) whose globals
    add ``names``: constants the copy compiles with (a plan, the rule it applies)."""
    copy = types.FunctionType(template.__code__, {**template.__globals__, **names},
                              template.__name__, template.__defaults__, template.__closure__)
    copy.__qualname__ = name
    copy.__module__, copy.__doc__ = template.__module__, template.__doc__
    return copy


#: every kernel: without Numba's runtime (see the module docstring)
_NO_RUNTIME = {"_nrt": False}
#: internal kernels and overloads: no wrappers, link-only code
_INTERNAL = dict(_NO_RUNTIME, no_cpython_wrapper=True, no_cfunc_wrapper=True,
                 pipeline_class=_InternalCompiler)


def internal_overload(fn):
    """``numba.extending.overload`` of ``fn`` for implementations only kernels call: their
    code is link-only, like an internal kernel's."""
    return overload(fn, jit_options=_INTERNAL)


def kernel(fn=None, *, entry=False, **options):
    """Decorate ``fn`` as a GIL-free nopython kernel without Numba's runtime: a link-only
    internal kernel, or with ``entry=True`` (one the Python layer calls) or
    ``inline="always"`` a plain cached dispatcher."""
    if fn is None:
        return lambda f: kernel(f, entry=entry, **options)
    settings = dict(_NO_RUNTIME, nogil=True, fastmath=set(FASTMATH), error_model="numpy")
    settings.update(options)
    if entry or settings.get("inline") == "always":
        return numba.njit(cache=True, **settings)(fn)
    settings.update(_INTERNAL, nopython=True)
    pipeline_class = settings.pop("pipeline_class")
    return InternalKernel(py_func=fn, locals={}, targetoptions=settings,
                          pipeline_class=pipeline_class)
