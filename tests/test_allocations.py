"""Steady-state training allocates nothing: Numba's runtime counters show that an
epoch after the first allocates no array — the only NRT events of a call are the
meminfo adapters Numba makes for the NumPy arguments it is handed (one each, freed on
return), the same for 10 steps as for 160 — and tracemalloc shows no growth with the
number of steps. Runs in a subprocess: NUMBA_NRT_STATS must be set before Numba starts."""
import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import gc, json, tracemalloc
    import numpy as np
    from numba.core.runtime import rtsys
    import fastnn

    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 12)).astype(np.float32)
    y = rng.integers(0, 4, 1000)
    model = fastnn.Sequential([fastnn.Dense(12, 32, activation="relu", l2=1e-4),
                               fastnn.Dense(32, 16, activation="tanh"),
                               fastnn.Dense(16, 4, activation="softmax")],
                              loss="categorical_crossentropy", seed=0)
    opt = fastnn.Adam()
    model.fit(X, y, epochs=1, batch_size=32, optimizer=opt, verbose=0)  # compile, allocate

    def nrt_events(batch_size, epochs):
        before = rtsys.get_allocation_stats()
        model.fit(X, y, epochs=epochs, batch_size=batch_size, optimizer=opt, verbose=0)
        after = rtsys.get_allocation_stats()
        return [a - b for a, b in zip(after, before)]  # alloc, free, mi_alloc, mi_free

    def traced(epochs):
        tracemalloc.start()
        model.fit(X, y, epochs=epochs, batch_size=32, optimizer=opt, verbose=0)
        gc.collect()
        current, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return current
    traced(1)
    print(json.dumps({"steps_10": nrt_events(100, 1), "steps_160": nrt_events(25, 4),
                      "epochs_1": nrt_events(100, 1), "epochs_3": nrt_events(100, 3),
                      "traced_1": traced(1), "traced_20": traced(20)}))
""")


def test_training_steps_allocate_nothing():
    env = dict(os.environ, NUMBA_NRT_STATS="1")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, check=True).stdout
    stats = json.loads(out.strip().splitlines()[-1])
    for events in stats.values():
        if isinstance(events, list):   # meminfo adapters only (no array data), all freed
            assert events[0] == events[1] == events[2] == events[3], stats
    per_epoch = (stats["epochs_3"][0] - stats["epochs_1"][0]) // 2
    assert per_epoch <= 20, stats      # one adapter per array argument of the epoch kernel
    # 4 epochs of 40 steps cost 3 more epoch calls than 1 epoch of 10 steps, not more steps
    assert stats["steps_160"][0] - stats["steps_10"][0] == 3 * per_epoch, stats
    # memory held after 20 epochs is no larger than after 1
    assert stats["traced_20"] <= stats["traced_1"] + 256, stats
