"""Start-up: the cold compile of the whole kernel set, and a fresh process's first
epoch with a warm cache."""
import os
import shutil
import tempfile

SCRIPT = """
import numpy as np, fastnn
rng = np.random.default_rng(0)
X = rng.standard_normal((2048, 56), dtype=np.float32); y = rng.standard_normal(2048)
for dtype in ("float32", "float64"):
    for loss, last, target in (("mse", None, y), ("categorical_crossentropy", "softmax",
                               rng.integers(0, 4, 2048))):
        model = fastnn.Sequential([fastnn.Dense(56, 64, activation="relu"),
                                   fastnn.Dense(64, 1 if last is None else 4, activation=last)],
                                  loss=loss, dtype=dtype, seed=0)
        model.fit(X, target, epochs=1, batch_size=64, validation_data=(X[:100], target[:100]),
                  verbose=0)
        model.predict(X)
"""


def timeraw_cold_compile():
    """Compile every kernel the model uses (float32 and float64) with an empty cache."""
    cache = tempfile.mkdtemp()
    return SCRIPT, f"import os; os.environ['NUMBA_CACHE_DIR'] = {cache!r}"


timeraw_cold_compile.timeout = 600


def timeraw_warm_first_epoch():
    """Import and first epoch of a fresh process whose cache is warm."""
    return SCRIPT
