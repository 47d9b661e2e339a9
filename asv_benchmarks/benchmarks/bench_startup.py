"""Start-up: the cold compile of the whole kernel set, and a fresh process's first
epoch with a warm cache."""
import os
import shutil
import tempfile

from fastnn.bench.kernel_set import SCRIPT


def timeraw_cold_compile():
    """Compile every kernel the model uses (float32 and float64) with an empty cache."""
    cache = tempfile.mkdtemp()
    return SCRIPT, f"import os; os.environ['NUMBA_CACHE_DIR'] = {cache!r}"


timeraw_cold_compile.timeout = 600


def timeraw_warm_first_epoch():
    """Import and first epoch of a fresh process whose cache is warm."""
    return SCRIPT
