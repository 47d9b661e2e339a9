"""Launch geometry, shared by every CUDA kernel; tests shrink it so that the
simulator runs multi-block paths on tiny shapes."""

#: side of the square tiles of the shared-memory matrix product (a compile-time
#: constant of the product kernels: change it with ``configure`` before their first use)
TILE = 16
#: threads per block of the one-dimensional kernels
THREADS = 256
#: threads per block side of the two-dimensional elementwise kernels
BLOCK_2D = 16


def configure(tile=None, threads=None, block_2d=None):
    """Set the launch geometry (tile must be set before the first product runs)."""
    global TILE, THREADS, BLOCK_2D
    if tile is not None:
        TILE = int(tile)
    if threads is not None:
        THREADS = int(threads)
    if block_2d is not None:
        BLOCK_2D = int(block_2d)


def grid_1d(n):
    return (max(1, (n + THREADS - 1) // THREADS),), (THREADS,)


def grid_2d(rows, cols):
    b = BLOCK_2D
    return (max(1, (rows + b - 1) // b), max(1, (cols + b - 1) // b)), (b, b)
