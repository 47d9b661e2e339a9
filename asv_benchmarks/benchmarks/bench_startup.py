"""Start-up: the cold compile of the kernel sets (fastnn.bench.kernel_set), and a fresh
process's first epoch with a warm cache."""
import tempfile

from fastnn.bench.kernel_set import EVERY_KIND, SCRIPT


def _cold(script):
    cache = tempfile.mkdtemp()
    return script, f"import os; os.environ['NUMBA_CACHE_DIR'] = {cache!r}"


def timeraw_cold_compile():
    """Compile the reference models' kernels (float32 and float64) with an empty cache."""
    return _cold(SCRIPT)


def timeraw_cold_compile_every_kind():
    """Compile every kernel the model layer can run (all plans of EVERY_KIND), cold."""
    return _cold(EVERY_KIND)


timeraw_cold_compile.timeout = 600
timeraw_cold_compile_every_kind.timeout = 900


def timeraw_warm_first_epoch():
    """Import and first epoch of a fresh process whose cache is warm."""
    return SCRIPT
