"""Counter-based random bits: the same bit for the same (key, step, site, element),
computed anywhere, in any order, on any thread, on the CPU or the GPU.

Dropout draws its mask from here (docs/design.md, "Remedies"): the
forward pass and, where it needs it, the backward pass recompute each element's bit
instead of storing a mask. The generator is SplitMix64 (Steele, Lea and Flood 2014):

    stream(key, step, site) = mix64(key + γ · (mix64(step) ⊕ site))
    bits(stream, e)         = mix64(stream + γ · (e + 1))
    keep(stream, e, rate)   = bits(stream, e) ≥ ⌊rate · 2⁶⁴⌋        P = 1 − rate

with γ = 0x9E3779B97F4A7C15 and mix64 SplitMix64's finalizer. ``step`` is the update
count, ``site`` the layer, ``e`` the element's index in its (features × batch) matrix.
All arithmetic is on unsigned 64-bit integers, wrapping modulo 2⁶⁴.
"""
import numpy as np

from ._jit import kernel

GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


@kernel(inline="always")
def mix64(z):
    """SplitMix64's finalizer: a bijection of the 64-bit integers that mixes every bit."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@kernel(inline="always")
def stream(key, step, site):
    """The stream of one (key, step, site): a 64-bit start for ``bits``."""
    return mix64(np.uint64(key) + GAMMA * (mix64(np.uint64(step)) ^ np.uint64(site)))


@kernel(inline="always")
def bits(start, e):
    """64 random bits for element ``e`` of the stream ``start``."""
    return mix64(np.uint64(start) + GAMMA * (np.uint64(e) + np.uint64(1)))


@kernel(inline="always")
def drop_threshold(rate):
    """⌊rate · 2⁶⁴⌋: an element is kept when its bits are at least this (0 ≤ rate < 1)."""
    return np.uint64(rate * 18446744073709551616.0)


@kernel
def keep_mask(key, step, site, rate, out):
    """out[e] = 1 where element e of the stream is kept, else 0 (for tests and users)."""
    start = stream(key, step, site)
    threshold = drop_threshold(rate)
    for e in range(out.shape[0]):
        out[e] = 1 if bits(start, e) >= threshold else 0
