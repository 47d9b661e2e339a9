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

from ._jit import kernel
from ._rules import RANDOM_RULES, compiled

#: the stream's scalar rules (kernels._rules), inlined into the CPU kernels
_rules_cpu = compiled(RANDOM_RULES, kernel(inline="always"))
mix64, stream, bits = _rules_cpu.mix64, _rules_cpu.stream, _rules_cpu.bits
drop_threshold = _rules_cpu.drop_threshold


@kernel
def keep_mask(key, step, site, rate, out):
    """out[e] = 1 where element e of the stream is kept, else 0 (for tests and users)."""
    start = stream(key, step, site)
    threshold = drop_threshold(rate)
    for e in range(out.shape[0]):
        out[e] = 1 if bits(start, e) >= threshold else 0
