"""The first fit of a configuration says it compiles (and how long it took); a fit that
loads its kernels from the cache says nothing — in this process, in a fresh one, and in
joblib's workers, which start with another thread count (NUMBA_NUM_THREADS=1) and load the
kernels their parent compiled instead of compiling their own."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json, logging, os, sys
    import numpy as np
    import fastnn

    def fit(verbose):
        rng = np.random.default_rng(0)
        X = rng.standard_normal((400, 7)); y = rng.integers(0, 3, 400)
        model = fastnn.Sequential([fastnn.Dense(7, 12, "tanh"), fastnn.Dense(12, 3, "softmax")],
                                  loss="categorical_crossentropy", dtype="float64", seed=1)
        model.fit(X, y, epochs=2, batch_size=32, validation_data=(X[:50], y[:50]),
                  verbose=verbose)
        model.predict(X)
        return model.params

    def in_worker():
        from numba.core import event
        compiles = []
        class Count(event.Listener):
            def on_start(self, ev): compiles.append(1)
            def on_end(self, ev): pass
        with event.install_listener("numba:compile", Count()):
            params = fit(0)
        import numba
        return len(compiles), numba.config.NUMBA_NUM_THREADS, float(params.sum())

    records = []
    class Keep(logging.Handler):
        def emit(self, record): records.append(record.getMessage())
    logging.getLogger("fastnn").addHandler(Keep())
    logging.getLogger("fastnn").setLevel(logging.INFO)
    what = sys.argv[1]
    if what == "fit":
        fit(1)
        print(json.dumps(records))
    else:
        from joblib import Parallel, delayed
        print(json.dumps(Parallel(n_jobs=2)(delayed(in_worker)() for _ in range(2))))
""")


def _run(what, cache, echo_handler=False):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    out = subprocess.run([sys.executable, "-c", SCRIPT, what], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def test_the_first_fit_says_it_compiles_and_a_cached_one_says_nothing(tmp_path):
    logged, stderr = _run("fit", tmp_path)
    assert len(logged) == 2
    assert logged[0].startswith("compiling kernels for this model (once: they are cached in "
                                + str(tmp_path))
    assert logged[1].startswith("compiled kernels in ") and logged[1].endswith(" s")
    assert float(logged[1].split()[3]) > 0.1
    # the logger has a handler here, so verbose=1 does not print the lines a second time
    assert "compiling" not in stderr

    logged, stderr = _run("fit", tmp_path)   # a fresh process: the kernels load
    assert logged == [] and "compiling" not in stderr


def test_a_fit_in_a_joblib_worker_loads_the_kernels_its_parent_compiled(tmp_path):
    pytest.importorskip("joblib")
    logged, _ = _run("fit", tmp_path)
    assert logged                             # the parent compiled
    workers, _ = _run("workers", tmp_path)
    assert [compiles for compiles, _, _ in workers] == [0, 0]
    # joblib starts its workers with a thread count of their own (1 on a 2-core machine)
    # which, before fastnn 0.3, was part of the cache's stamp: each compiled again
    assert {threads for _, threads, _ in workers} == \
        {max(1, (os.cpu_count() or 1) // 2)}


def test_verbose_echoes_the_lines_on_stderr(tmp_path):
    code = textwrap.dedent("""
        import numpy as np, fastnn
        X = np.ones((40, 3)); y = np.ones(40)
        model = fastnn.Sequential([fastnn.Dense(3, 5, "softplus"), fastnn.Dense(5, 1)],
                                  dtype="float64", seed=0)
        model.fit(X, y, epochs=1, batch_size=8, verbose=1)
    """)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, check=True)
    lines = first.stderr.strip().splitlines()
    assert lines[0].startswith("fastnn: compiling kernels for this model")
    assert lines[1].startswith("fastnn: compiled kernels in ")
    again = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, check=True)
    assert again.stderr == ""
