import subprocess
import sys

import numpy as np

import fastnn


def test_set_num_threads_before_any_kernel_ran():
    code = ("import fastnn; fastnn.set_num_threads(1); "
            "from threadpoolctl import threadpool_info; "
            "print(sorted({p['num_threads'] for p in threadpool_info() "
            "if 'scipy' in p['filepath']}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[1]"


def test_set_num_threads_limits_blas_and_keeps_results_deterministic():
    original = fastnn.get_num_threads()
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((300, 20)), rng.integers(0, 3, 300)

    def train():
        model = fastnn.Sequential([fastnn.Dense(20, 64, activation="relu"),
                                   fastnn.Dense(64, 3, activation="softmax")],
                                  loss="categorical_crossentropy", seed=0)
        model.fit(X, y, epochs=2, batch_size=50, verbose=0)
        return model.params.copy()

    try:
        fastnn.set_num_threads(1)
        assert fastnn.get_num_threads() == 1
        one = train()
        np.testing.assert_array_equal(one, train())
    finally:
        fastnn.set_num_threads(original)
    assert fastnn.get_num_threads() == original
