"""Epochs as compiled chunks (fastnn.epochs): bitwise the same as one call per epoch,
Ctrl-C at a step boundary with a consistent model, the progress line, the chunk sizer."""
import io
import signal

import numpy as np
import pytest

import fastnn
from fastnn import epochs
from fastnn.kernels import _training as training


def _problem(rng, n=301):
    X = rng.standard_normal((n, 5))
    y = rng.integers(0, 3, n)
    model = fastnn.Sequential([fastnn.Dense(5, 9), fastnn.BatchNorm(9), fastnn.Activation("relu"),
                               fastnn.Dropout(0.3), fastnn.Dense(9, 3, activation="softmax")],
                              loss="categorical_crossentropy", dtype="float64", seed=4)
    return X, y, model


class _FixedChunks(epochs.ChunkSizer):
    """Chunks of the given step counts in turn (cycled), whatever the timings."""

    sizes = (1,)

    def __init__(self, seconds=None):
        self.calls = 0
        self.steps = self.sizes[0]

    def record(self, steps, elapsed):
        self.calls += 1
        self.steps = self.sizes[self.calls % len(self.sizes)]


@pytest.mark.parametrize("sizes", [(1,), (2, 5, 1, 3), (10 ** 6,)])
def test_chunked_fit_is_bitwise_one_call_per_epoch(monkeypatch, sizes):
    results = []
    for chunks in (sizes, (10 ** 6,)):
        X, y, model = _problem(np.random.default_rng(0))
        monkeypatch.setattr(_FixedChunks, "sizes", chunks)
        monkeypatch.setattr(epochs, "ChunkSizer", _FixedChunks)
        history = model.fit(X, y, epochs=3, batch_size=16, optimizer=fastnn.Adam(1e-2),
                            validation_data=(X[:50], y[:50]), verbose=0)
        results.append((model.params.copy(), model.stats.copy(), history.history))
    (p1, s1, h1), (p2, s2, h2) = results
    assert np.array_equal(p1, p2) and np.array_equal(s1, s2)
    for key in ("loss", "accuracy", "val_loss"):
        assert h1[key] == h2[key]


def test_train_batches_splits_at_any_batch_boundary():
    X, y, model = _problem(np.random.default_rng(1), n=157)
    X, T = model._xy(X, y)
    perm = np.random.default_rng(2).permutation(157).astype(np.int64)
    bs, rule = 10, fastnn.SGD(0.1, momentum=0.9).update_rule()
    runs = []
    for bounds in ([0, 157], [0, 10, 40, 50, 157], [0, 150, 157]):
        _, _, model = _problem(np.random.default_rng(1), n=157)
        opt = fastnn.SGD(0.1, momentum=0.9)
        buf = model._buffers(bs, opt.bind(model))
        total, correct, step = 0.0, 0, 0
        for lo, hi in zip(bounds, bounds[1:]):
            total, correct, step = training.train_batches(X, T, perm, lo, hi, bs, model.net,
                                                          rule, buf, step, total, correct)
        runs.append((model.params.copy(), total, correct, step))
    for params, total, correct, step in runs[1:]:
        assert np.array_equal(params, runs[0][0])
        assert (total, correct, step) == runs[0][1:] and step == 16


def test_ctrl_c_stops_at_a_step_boundary(monkeypatch, tmp_path):
    """SIGINT during the third chunk of epoch 2: fit returns after that chunk, history holds
    the partial epoch, the model predicts, saves and loads; the handler is restored."""
    X, y, model = _problem(np.random.default_rng(3))
    monkeypatch.setattr(_FixedChunks, "sizes", (2,))
    monkeypatch.setattr(epochs, "ChunkSizer", _FixedChunks)
    chunks = []
    original = epochs.Progress.update

    def update(self, *args):
        chunks.append(args)
        if len(chunks) == 10 + 3:   # epoch 1 has 10 chunks of 2 steps (19 steps)
            signal.raise_signal(signal.SIGINT)
        return original(self, *args)

    monkeypatch.setattr(epochs.Progress, "update", update)
    handler = signal.getsignal(signal.SIGINT)
    history = model.fit(X, y, epochs=5, batch_size=16, validation_data=(X[:40], y[:40]),
                        verbose=0)
    assert signal.getsignal(signal.SIGINT) is handler
    assert history.interrupted and history.epoch == [0, 1]
    assert model.optimizer.steps == 19 + 3 * 2
    assert np.isnan(history.history["val_loss"][1]) and np.isfinite(history.history["loss"][1])
    assert np.all(np.isfinite(model.predict_proba(X)))
    model.save(tmp_path / "m.fnn")
    again = fastnn.load(tmp_path / "m.fnn")
    assert np.array_equal(again.predict_proba(X), model.predict_proba(X))
    assert again.optimizer.steps == 25


def test_ctrl_c_between_epochs_stops_before_the_next():
    X, y, model = _problem(np.random.default_rng(4))

    def interrupt(epoch, logs):
        if epoch == 1:
            signal.raise_signal(signal.SIGINT)

    history = model.fit(X, y, epochs=6, batch_size=32, callbacks=[interrupt], verbose=0)
    assert history.interrupted and history.epoch == [0, 1]
    assert model.optimizer.steps == 2 * 10


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_line_only_on_a_terminal_for_long_epochs():
    tty = epochs.Progress(True, _Terminal())
    tty.update("epoch 1/3", 10, 100, 640, 0.05)      # 0.5 s expected: not shown
    assert tty.stream.getvalue() == ""
    tty.update("epoch 1/3", 20, 100, 1280, 0.4)      # 2 s expected: shown
    line = tty.stream.getvalue()
    assert line.startswith("\repoch 1/3  20/100 steps  3,200 samples/s  ETA 1.6 s")
    tty.clear()
    assert tty.stream.getvalue().endswith("\r\x1b[K")
    for progress in (epochs.Progress(True, io.StringIO()), epochs.Progress(False, _Terminal())):
        progress.update("epoch 1/3", 20, 100, 1280, 5.0)
        assert progress.stream.getvalue() == ""


def test_chunk_sizer_aims_at_its_duration_and_grows_gradually():
    sizer = epochs.ChunkSizer(seconds=0.2)
    assert sizer.steps == 1
    sizer.record(1, 30.0)              # a first step that compiled: stay at 1
    assert sizer.steps == 1
    sizes = []
    for _ in range(6):                 # 1 ms steps: 4x growth up to 200 steps
        sizer.record(sizer.steps, sizer.steps * 1e-3)
        sizes.append(sizer.steps)
    assert sizes == [4, 16, 64, 200, 200, 200]
    sizer.record(200, 2.0)             # steps became 10x slower
    assert sizer.steps == 20


def test_fit_takes_a_shuffling_function():
    """shuffle=f: f(perm) writes each epoch's order; the same orders as shuffle=True give
    bitwise the same weights, and indices out of range are refused before any kernel."""
    from fastnn.epochs import shuffle_order

    rng = np.random.default_rng(4)
    X = rng.standard_normal((57, 3)).astype(np.float32)
    y = rng.standard_normal(57).astype(np.float32)

    def model():
        return fastnn.Sequential([fastnn.Dense(3, 5, "tanh"), fastnn.Dense(5, 1)], seed=2)

    a, b = model(), model()
    a.fit(X, y, epochs=3, batch_size=8, seed=9, verbose=0)
    orders = np.random.default_rng(9)
    b.fit(X, y, epochs=3, batch_size=8, verbose=0,
          shuffle=lambda perm: shuffle_order(perm, orders))
    np.testing.assert_array_equal(a.params, b.params)
    before = b.params.copy()

    def out_of_range(perm):
        perm[0] = 57

    with pytest.raises(ValueError, match="outside"):
        b.fit(X, y, epochs=1, batch_size=8, verbose=0, shuffle=out_of_range)
    np.testing.assert_array_equal(b.params, before)
    with pytest.raises(TypeError, match="shuffle must be a bool or a function"):
        b.fit(X, y, shuffle="yes")
