"""``check_layout``: the one checked entry of the kernel library. Kernels do not check
shapes, dtypes or bounds (that is what makes them fast); a custom loop calls this once,
before its compiled function, on everything that function will hand to the kernels.
kernels.cuda.check_layout is the same check for device arrays (``check_arrays`` with
another ``ArrayKind``)."""
import numbers
from collections import namedtuple

import numpy as np

from ._layout import NORM, R_OFF, Network, Segments
from ._network import Buffers, workspace_size
from ._optimizers import STATE_VECTORS, Update


#: what an array argument must be: ``noun`` for messages, ``is_array(a)``,
#: ``c_contiguous(a)``, ``to_host(a)`` (a NumPy copy, for the index check of perm)
ArrayKind = namedtuple("ArrayKind", "noun is_array c_contiguous to_host")
NUMPY = ArrayKind("NumPy array", lambda a: isinstance(a, np.ndarray),
                  lambda a: a.flags.c_contiguous, lambda a: a)


def _flat(kind, array, name, length, dtype, *, at_least=False):
    if not kind.is_array(array):
        raise TypeError(f"{name} must be a {kind.noun}, got {type(array).__name__}")
    if array.ndim != 1 or not kind.c_contiguous(array):
        raise ValueError(f"{name} must be a 1-D C-contiguous array, got shape {array.shape}")
    if array.dtype != dtype:
        raise TypeError(f"{name} must be {np.dtype(dtype).name}, got {array.dtype.name}")
    wrong = array.shape[0] < length if at_least else array.shape[0] != length
    if wrong:
        need = f"at least {length}" if at_least else f"{length}"
        raise ValueError(f"{name} has length {array.shape[0]}; the layout needs {need}")


def _rows(kind, array, name, n_columns, dtype, n_rows=None):
    if not kind.is_array(array):
        raise TypeError(f"{name} must be a {kind.noun}, got {type(array).__name__}")
    contiguous = kind.c_contiguous(array)
    if array.ndim != 2 or array.shape[1] != n_columns or not contiguous:
        order = "" if contiguous else " (not C-contiguous)"
        raise ValueError(f"{name} must be a C-contiguous (n, {n_columns}) array, got shape "
                         f"{tuple(array.shape)}{order}")
    if array.dtype != dtype:
        raise TypeError(f"{name} must be {np.dtype(dtype).name}, got {array.dtype.name}")
    if n_rows is not None and array.shape[0] != n_rows:
        raise ValueError(f"{name} has {array.shape[0]} rows, X has {n_rows}")


def check_layout(net, buf, *, batch_size, X=None, T=None, perm=None, upd=None):
    """Check, once before a custom loop, what it will pass to the kernels against the
    layout ``net`` (a model's ``layout.net``):

    - ``buf`` (a ``Buffers``): ``params`` and ``grads`` 1-D of the parameter count,
      one float dtype; ``state`` (rows, parameter count); ``stats`` of the running
      statistics' length; ``ws`` at least ``workspace_size(net, batch_size)``; ``acc``
      float64 of at least ``net.acc_size``;
    - ``X`` (n, n_inputs) and ``T`` (n, n_outputs), C-contiguous, of params' dtype;
    - ``perm``: int64 indices in [0, n) (a bad index would read outside X and T);
    - ``upd`` (an optimizer's ``Update``): ``buf.state`` has the rows its rule needs.

    Raises TypeError or ValueError naming the argument; returns None. Calls of the
    kernels with arguments that were not checked, or that changed since, are undefined
    behaviour (memory corruption, not an exception)."""
    check_arrays(NUMPY, net, buf, batch_size, X, T, perm, upd,
                 lambda net: max(1, int(net.acc_size)))


def check_arrays(kind, net, buf, batch_size, X, T, perm, upd, acc_length):
    """check_layout for arrays of ``kind``, ``buf.acc`` of at least ``acc_length(net)``."""
    if not isinstance(net, Network) or not isinstance(net.seg, Segments):
        raise TypeError(f"net must be a fastnn.kernels.Network (a model's layout.net), got "
                        f"{type(net).__name__}")
    if not isinstance(buf, Buffers):
        raise TypeError(f"buf must be a fastnn.kernels.Buffers (layout.buffers(...)), got "
                        f"{type(buf).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or \
            batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    n_params = int(net.seg.bounds[-1])
    dtype = buf.params.dtype if kind.is_array(buf.params) else None
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"buf.params must be a float32 or float64 {kind.noun}")
    _flat(kind, buf.params, "buf.params", n_params, dtype)
    _flat(kind, buf.grads, "buf.grads", n_params, dtype)
    t = net.table
    n_stats = max([int(t[l, R_OFF]) + 2 * int(net.sizes[l + 1])
                   for l in range(t.shape[0]) if t[l, NORM]] or [0])
    _flat(kind, buf.stats, "buf.stats", n_stats, dtype)
    _flat(kind, buf.ws, "buf.ws", int(workspace_size.py_func(net, batch_size)), dtype,
          at_least=True)
    _flat(kind, buf.acc, "buf.acc", acc_length(net), np.float64, at_least=True)
    state = buf.state
    if not kind.is_array(state) or state.ndim != 2 or \
            state.shape[1] not in (0, n_params) or state.dtype != dtype or \
            not kind.c_contiguous(state):
        raise ValueError(f"buf.state must be a C-contiguous (rows, {n_params}) {dtype.name} "
                         "array (the optimizer's state vectors)")
    if upd is not None:
        if not isinstance(upd, Update):
            raise TypeError(f"upd must be an optimizer's Update (optimizer.update_rule()), got "
                            f"{type(upd).__name__}")
        rows = STATE_VECTORS[int(upd.code)]
        if rows and (state.shape[0] < rows or state.shape[1] != n_params):
            raise ValueError(f"buf.state has shape {tuple(state.shape)}; this optimizer needs "
                             f"({rows}, {n_params}): pass the optimizer to layout.buffers")
    n = None
    if X is not None:
        _rows(kind, X, "X", int(net.sizes[0]), dtype)
        n = X.shape[0]
    if T is not None:
        _rows(kind, T, "T", int(net.sizes[-1]), dtype, n)
        n = T.shape[0] if n is None else n
    if perm is not None:
        if not kind.is_array(perm) or perm.ndim != 1 or perm.dtype != np.int64:
            raise TypeError(f"perm must be a 1-D int64 {kind.noun} of sample indices")
        if n is None:
            raise ValueError("perm needs X or T to check its indices against")
        perm = kind.to_host(perm)
        if perm.size and (perm.min() < 0 or perm.max() >= n):
            raise ValueError(f"perm holds indices outside [0, {n}): min {perm.min()}, max "
                             f"{perm.max()}")
