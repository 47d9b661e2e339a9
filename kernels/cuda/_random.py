"""CUDA twin of fastnn.kernels._random: the same SplitMix64 counter-based stream as
device functions, bit for bit (unsigned 64-bit arithmetic wrapping modulo 2⁶⁴).

Every operand is a uint64 (``np.uint64`` casts; a uint64 mixed with a signed integer
would become a float64 in Numba's typing). On the simulator the device functions run
as Python on NumPy scalars, which warn when uint64 arithmetic wraps: they run there
under ``np.errstate(over="ignore")``, giving the same wrapped values.
"""
import functools

import numpy as np

from .._rules import RANDOM_RULES, compiled
from . import _config as config
from ._backend import SIMULATOR, cuda


def _device(fn):
    """A device function; on the simulator, one that lets uint64 arithmetic wrap quietly."""
    if SIMULATOR:
        inner = fn

        @functools.wraps(inner)
        def fn(*args):
            with np.errstate(over="ignore"):
                return inner(*args)
    return cuda.jit(device=True)(fn)


#: the stream's scalar rules (kernels._rules), as device functions
_rules_device = compiled(RANDOM_RULES, _device)
mix64, stream, bits = _rules_device.mix64, _rules_device.stream, _rules_device.bits
drop_threshold = _rules_device.drop_threshold


@cuda.jit
def _keep_mask(key, step, site, rate, out):
    e = cuda.grid(1)
    if e < out.shape[0]:
        out[e] = 1 if bits(stream(key, step, site), e) >= drop_threshold(rate) else 0


def keep_mask(key, step, site, rate, out):
    """out[e] = 1 where element e of the stream is kept, else 0 (out a device array);
    the stream is computed on the device."""
    blocks, threads = config.grid_1d(out.shape[0])
    _keep_mask[blocks, threads](np.uint64(key), np.uint64(step), np.uint64(site),
                                float(rate), out)
