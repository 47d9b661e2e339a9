"""Steady-state training allocates nothing. The kernels are compiled without Numba's
runtime (kernels._jit: ``_nrt=False``), so a kernel cannot allocate an array at all
(one that tried would not compile) and no reference counts are kept: Numba's runtime
counters show no event at all — not even the meminfo adapters a kernel with the runtime
makes for each NumPy argument — for any number of steps, epochs or calls per epoch;
tracemalloc shows no growth with the number of steps in a call. Epochs run as one
compiled call here (fastnn.epochs sizes chunks by time; the script fixes them), and as
many calls as steps in one check. Also with every remedy of 0.2 in use (BatchNorm,
Dropout, AdamW with a schedule, clipping), with minibatches split by samples across
threads (Plan.split), and with convolution and pooling layers. Runs in a subprocess: NUMBA_NRT_STATS must
be set before Numba starts."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import gc, json, sys, tracemalloc
    import numpy as np
    from numba.core.runtime import rtsys
    import fastnn
    from fastnn import epochs

    class FixedChunks(epochs.ChunkSizer):   # chunks of CHUNK steps, whatever the timings
        def __init__(self):
            self.steps = CHUNK
        def record(self, steps, elapsed):
            self.steps = CHUNK
    CHUNK = 10 ** 9
    epochs.ChunkSizer = FixedChunks
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 12)).astype(np.float32)
    y = rng.integers(0, 4, 1000)
    if sys.argv[1] in ("plain", "split"):   # split: minibatches of 100 split by samples
        width = 32 if sys.argv[1] == "plain" else 512
        layers = [fastnn.Dense(12, width, activation="relu", l2=1e-4),
                  fastnn.Dense(width, 16, activation="tanh"),
                  fastnn.Dense(16, 4, activation="softmax")]
        opt, options = fastnn.Adam(), {}
    elif sys.argv[1] == "conv":   # convolutions and pooling: 12 features as 2 channels of 6
        X = X.reshape(1000, 2, 6)
        layers = [fastnn.Conv1D(2, 8, 3, padding=1, activation="relu", l2=1e-4),
                  fastnn.MaxPool1D(2), fastnn.Dropout(0.1),
                  fastnn.Conv1D(8, 8, 2, stride=2, activation="tanh"), fastnn.Flatten(),
                  fastnn.Dense(8, 4, activation="softmax")]
        opt, options = fastnn.Adam(), {}
    else:   # every remedy of 0.2 at once
        layers = [fastnn.Dropout(0.1), fastnn.Dense(12, 32, l2=1e-4), fastnn.BatchNorm(32),
                  fastnn.Activation("relu"), fastnn.Dropout(0.2),
                  fastnn.Dense(32, 16, activation="tanh"), fastnn.Dropout(0.3),
                  fastnn.Dense(16, 4, activation="softmax")]
        opt = fastnn.AdamW(lr=fastnn.CosineDecay(1e-3, total_steps=500, warmup_steps=20))
        options = {"clip_norm": 1.0, "clip_value": 0.5}
    model = fastnn.Sequential(layers, loss="categorical_crossentropy", seed=0,
                              input_shape=X.shape[1:])
    fit = lambda **kw: model.fit(X, y, optimizer=opt, verbose=0, **options, **kw)  # noqa
    from fastnn.kernels._layout import planned_for
    print(json.dumps({"split": planned_for(model.net, 100, training=True).plan.split}))
    for batch_size in (32, 100, 1000):
        fit(epochs=1, batch_size=batch_size)  # compile, allocate

    def nrt_events(batch_size, epochs):
        before = rtsys.get_allocation_stats()
        fit(epochs=epochs, batch_size=batch_size)
        after = rtsys.get_allocation_stats()
        return [a - b for a, b in zip(after, before)]  # alloc, free, mi_alloc, mi_free

    def traced(batch_size):  # Python memory still held after one epoch
        tracemalloc.start()
        fit(epochs=1, batch_size=batch_size)
        gc.collect()
        current, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return current
    traced(10)
    one_call = nrt_events(100, 1)
    CHUNK = 1   # the same epoch as 10 calls of one step: 9 more calls, nothing else
    ten_calls = nrt_events(100, 1)
    CHUNK = 10 ** 9
    print(json.dumps({"steps_10": nrt_events(100, 1), "steps_160": nrt_events(25, 4),
                      "epochs_1": nrt_events(100, 1), "epochs_3": nrt_events(100, 3),
                      "one_call": one_call, "ten_calls": ten_calls,
                      "traced_1_step": traced(1000), "traced_100_steps": traced(10)}))
""")


@pytest.mark.parametrize("model", ["plain", "regularized", "split", "conv"])
def test_training_steps_allocate_nothing(model):
    env = dict(os.environ, NUMBA_NRT_STATS="1")
    out = subprocess.run([sys.executable, "-c", SCRIPT, model], env=env, capture_output=True,
                         text=True, check=True).stdout
    lines = out.strip().splitlines()
    assert json.loads(lines[0])["split"] is (model == "split")
    stats = json.loads(lines[-1])
    for name, events in stats.items():
        if isinstance(events, list):   # alloc, free, meminfo alloc, meminfo free
            assert events == [0, 0, 0, 0], (name, stats)
    # Python memory held after an epoch of 100 steps is no larger than after one of 1
    # step (compared within one call each: Numba's dispatcher keeps caches of its own,
    # tens of kB that rise and fall with the number of calls with tuple arguments)
    assert stats["traced_100_steps"] <= stats["traced_1_step"] + 256, stats


def test_a_kernel_cannot_allocate():
    """Without Numba's runtime an allocating kernel does not compile: the guarantee is
    structural, not a property of today's kernels only."""
    import numpy as np
    from numba.core.errors import TypingError

    from fastnn.kernels._jit import kernel

    def filled(n):
        a = np.empty(n)
        a[:] = 1.0
        return a.sum()

    def summed(x):   # the same kernel on an array it is given compiles and runs
        return x.sum()

    with pytest.raises(TypingError, match="empty"):
        kernel(filled)(3)
    assert kernel(summed)(np.ones(3)) == 3.0
