"""Scans of the caller's data before training: compiled, parallel, without temporaries
(``np.isfinite(X).all()`` builds a boolean array a quarter the size of a float32 X)."""
from ._jit import kernel
from ._tasks import run, unpack

#: elements per block of a scan (blocks across Numba's threads)
SCAN_BLOCK = 1 << 16


def scan_blocks(n):
    """The number of blocks of a scan of n elements: the length of its ``counts``."""
    return (n + SCAN_BLOCK - 1) // SCAN_BLOCK


@kernel
def _nonfinite(block):
    """How many elements of ``block`` are NaN or ±∞ (x − x is 0 for the others; a loop
    from index 0 over a slice, which LLVM vectorizes)."""
    bad = 0
    for i in range(block.shape[0]):
        bad += (block[i] - block[i]) != 0
    return bad


@kernel(entry=True)
def total_nonfinite(flat):
    """How many elements of the 1-D ``flat`` are NaN or ±∞, on the calling thread."""
    return _nonfinite(flat)


@kernel(entry=True)
def count_nonfinite(flat, counts):
    """counts[q] = how many elements of block q (SCAN_BLOCK elements) of the 1-D ``flat``
    are NaN or ±∞; the blocks across threads (``counts`` has scan_blocks(n) entries: a
    parallel reduction would allocate, which kernels cannot)."""
    run(_count_block, counts.shape[0], (flat, counts))
    return 0


@kernel
def _count_block(q, args):
    flat, counts = unpack(args)
    counts[q] = _nonfinite(flat[q * SCAN_BLOCK:min(flat.shape[0], (q + 1) * SCAN_BLOCK)])
