"""Sequential(device="cuda") on the simulator: same results as on the CPU, and no
host transfer per kernel (transfers counted by wrapping them)."""
import numpy as np
import pytest

import fastnn
from fastnn import epochs
from fastnn.kernels.cuda._backend import cuda


def models(loss, last, n_out, dtype="float64"):
    def build(device):
        return fastnn.Sequential([fastnn.Dense(5, 4, activation="tanh", l2=0.01),
                                  fastnn.Dense(4, 3, activation="relu", l1=0.001),
                                  fastnn.Dense(3, n_out, activation=last)],
                                 loss=loss, dtype=dtype, seed=3, device=device)
    return build("cpu"), build("cuda")


def data(loss, n=13, n_out=3):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n, 5))
    if loss == "poisson":
        return X, rng.poisson(1.0, (n, n_out)).astype(np.float64)
    y = rng.standard_normal((n, n_out)) if loss == "mse" else rng.integers(0, n_out, n)
    return X, y


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-10), ("float32", 1e-4)])
@pytest.mark.parametrize("loss,last", [("mse", None), ("categorical_crossentropy", "softmax"),
                                       ("poisson", "exp")])
def test_training_on_device_matches_cpu(loss, last, dtype, tol, weighted):
    """... with sample weights too (fit's, validation's and evaluate's)."""
    X, y = data(loss)
    w = np.random.default_rng(2).uniform(0, 2, len(X)) if weighted else None
    cpu_model, gpu_model = models(loss, last, 3, dtype)
    runs = []
    for model in (cpu_model, gpu_model):
        val = (X[:5], y[:5]) if w is None else (X[:5], y[:5], w[:5])
        runs.append(model.fit(X, y, sample_weight=w, epochs=2, batch_size=8,
                              optimizer=fastnn.Adam(lr=0.01), validation_data=val, seed=5,
                              verbose=0).history)
    for key in runs[0]:
        if key != "time":
            np.testing.assert_allclose(runs[1][key], runs[0][key], rtol=tol)
    np.testing.assert_allclose(gpu_model.params, cpu_model.params, rtol=tol * 10, atol=tol)
    np.testing.assert_allclose(gpu_model.forward(X), cpu_model.forward(X), rtol=tol, atol=tol)
    assert gpu_model.evaluate(X, y, sample_weight=w)["loss"] == \
        pytest.approx(cpu_model.evaluate(X, y, sample_weight=w)["loss"], rel=tol)


def compare_fits(build, X, y, fit_args, tol):
    """Fit the model built by ``build(device)`` on the CPU and on the device with the same
    arguments (``fit_args(model)`` gives fresh optimizer and callbacks); histories,
    parameters, running statistics and inference outputs must agree."""
    fitted, runs = [], []
    for device in ("cpu", "cuda"):
        model = build(device)
        runs.append(model.fit(X, y, verbose=0, **fit_args(model)))
        fitted.append(model)
    (cpu_run, gpu_run), (cpu_model, gpu_model) = runs, fitted
    assert gpu_run.best_epoch == cpu_run.best_epoch
    assert list(gpu_run.history) == list(cpu_run.history)
    for key in cpu_run.history:
        if key != "time":
            np.testing.assert_allclose(gpu_run.history[key], cpu_run.history[key], rtol=tol,
                                       err_msg=key)
    np.testing.assert_allclose(gpu_model.params, cpu_model.params, rtol=tol * 10, atol=tol)
    np.testing.assert_allclose(gpu_model.stats, cpu_model.stats, rtol=tol * 10, atol=tol)
    np.testing.assert_allclose(gpu_model.forward(X), cpu_model.forward(X), rtol=tol * 10,
                               atol=tol)
    for key, value in cpu_model.evaluate(X, y).items():
        assert gpu_model.evaluate(X, y)[key] == pytest.approx(value, rel=tol)
    return cpu_run


def halve_lr(optimizer):
    """A callback that changes the schedule's scale between epochs (so the device must
    take the new schedule)."""
    def callback(epoch, logs):
        optimizer.lr_scale *= 0.5
    return callback


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-10), ("float32", 1e-4)])
def test_batchnorm_dropout_adamw_cosine_clip_norm(dtype, tol):
    rng = np.random.default_rng(7)
    X, y = rng.standard_normal((12, 5)), rng.integers(0, 3, 12)

    def build(device):
        return fastnn.Sequential([fastnn.Dense(5, 6), fastnn.BatchNorm(6, momentum=0.2),
                                  fastnn.Activation("relu"), fastnn.Dropout(0.3),
                                  fastnn.Dense(6, 3, activation="softmax", l2=0.01)],
                                 loss="categorical_crossentropy", dtype=dtype, seed=3,
                                 device=device)

    def fit_args(model):
        optimizer = fastnn.AdamW(lr=fastnn.CosineDecay(0.05, total_steps=12, warmup_steps=2,
                                                       min_lr=0.001), weight_decay=0.1)
        return dict(epochs=3, batch_size=5, optimizer=optimizer, clip_norm=0.5, seed=5,
                    validation_data=(X[:7], y[:7]), callbacks=[halve_lr(optimizer)])

    history = compare_fits(build, X, y, fit_args, tol).history
    assert len(set(history["lr"])) == 3              # the schedule and its scale moved


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-10), ("float32", 1e-4)])
def test_input_dropout_tanh_lamb_step_decay_clip_value(dtype, tol):
    rng = np.random.default_rng(8)
    X, y = rng.standard_normal((11, 4)), rng.integers(0, 2, (11, 2))

    def build(device):
        return fastnn.Sequential([fastnn.Dropout(0.25), fastnn.Dense(4, 5, activation="tanh",
                                                                     l1=0.001),
                                  fastnn.Dense(5, 2, activation="sigmoid")],
                                 loss="binary_crossentropy", dtype=dtype, seed=4, device=device)

    def fit_args(model):
        return dict(epochs=3, batch_size=4, seed=6, clip_value=0.05, early_stopping=2,
                    optimizer=fastnn.Lamb(lr=fastnn.StepDecay(0.05, step_size=2, gamma=0.5)),
                    validation_data=(X[:6], y[:6]))

    compare_fits(build, X, y, fit_args, tol)


class TransferCounter:
    """Counts copies between host and device: explicit ones, and host arrays handed to
    a kernel (which a real GPU would copy over, and back, at every launch)."""

    def __init__(self, monkeypatch):
        from numba.cuda.simulator import kernel as simulated

        self.count = self.implicit = 0
        to_device = cuda.to_device
        probe = cuda.to_device(np.zeros(1))
        array_type = type(probe)
        copy_to_host = array_type.copy_to_host
        wrap_arg = simulated.wrap_arg

        def counted_to_device(*args, **kwargs):
            self.count += 1
            return to_device(*args, **kwargs)

        def counted_copy_to_host(*args, **kwargs):
            self.count += 1
            return copy_to_host(*args, **kwargs)

        def counted_wrap_arg(*args, **kwargs):
            self.implicit += 1
            return wrap_arg(*args, **kwargs)

        monkeypatch.setattr(cuda, "to_device", counted_to_device)
        monkeypatch.setattr(array_type, "copy_to_host", counted_copy_to_host)
        monkeypatch.setattr(simulated, "wrap_arg", counted_wrap_arg)


class FixedChunks(epochs.ChunkSizer):
    """Chunks of ``steps`` steps whatever the timings (the default sizes them by time)."""

    steps_each = 10 ** 9     # a chunk per epoch

    def __init__(self, seconds=None):
        self.steps = self.steps_each

    def record(self, steps, elapsed):
        pass


@pytest.fixture
def chunks(monkeypatch):
    """``chunks(steps)``: every chunk of every fit that many steps."""
    def set_steps(steps):
        monkeypatch.setattr(FixedChunks, "steps_each", steps)
        monkeypatch.setattr(epochs, "ChunkSizer", FixedChunks)
    return set_steps


def test_no_host_round_trip_per_kernel(monkeypatch, chunks):
    """A few transfers per chunk of steps (the loss sums come back), none per step."""
    chunks(10 ** 9)
    X, y = data("categorical_crossentropy", n=16)
    counts = []
    for batch_size in (8, 2):           # 2 and 8 steps per epoch
        _, model = models("categorical_crossentropy", "softmax", 3)
        counter = TransferCounter(monkeypatch)
        model.fit(X, y, epochs=2, batch_size=batch_size, verbose=0)
        counts.append((counter.count, counter.implicit))
    assert counts[0] == counts[1], counts   # transfers do not grow with the steps
    assert counts[0][0] <= 20, counts       # a handful per call and per epoch
    assert counts[0][1] == 0, counts        # no host array is handed to a kernel


def test_no_host_round_trip_with_every_feature(monkeypatch, chunks):
    """BatchNorm, Dropout, a schedule, both clippings and LAMB's trust ratios: still no
    transfer per step."""
    chunks(10 ** 9)
    X, y = data("categorical_crossentropy", n=16)
    counts = []
    for batch_size in (8, 4):
        model = fastnn.Sequential([fastnn.Dropout(0.1), fastnn.Dense(5, 4), fastnn.BatchNorm(4),
                                   fastnn.Activation("relu"), fastnn.Dropout(0.2),
                                   fastnn.Dense(4, 3, activation="softmax")],
                                  loss="categorical_crossentropy", seed=1, device="cuda")
        counter = TransferCounter(monkeypatch)
        model.fit(X, y, epochs=2, batch_size=batch_size, verbose=0, clip_norm=1.0,
                  clip_value=0.5, optimizer=fastnn.Lamb(lr=fastnn.StepDecay(0.01, 3)))
        counts.append((counter.count, counter.implicit))
    assert counts[0] == counts[1], counts
    assert counts[0][0] <= 20 and counts[0][1] == 0, counts


def test_device_argument_is_checked():
    with pytest.raises(ValueError, match="device"):
        fastnn.Sequential([fastnn.Dense(2, 1)], device="tpu")


def test_ctrl_c_stops_a_device_fit_at_a_chunk_boundary(monkeypatch, chunks):
    """SIGINT during the third chunk (of 2 steps) of epoch 2, on the device as on the CPU:
    fit returns after that chunk with the partial epoch recorded, the host's parameters
    and optimizer state those of the steps taken (the CPU's, to rounding), the handler
    restored."""
    import signal

    chunks(2)
    X, y = data("categorical_crossentropy", n=80)
    fitted, original = [], epochs.Progress.update
    for model in models("categorical_crossentropy", "softmax", 3):
        updates = []

        def update(self, *args):
            updates.append(args)
            if len(updates) == 5 + 3:   # epoch 1: 5 chunks (10 steps of 8)
                signal.raise_signal(signal.SIGINT)
            return original(self, *args)

        monkeypatch.setattr(epochs.Progress, "update", update)
        handler = signal.getsignal(signal.SIGINT)
        history = model.fit(X, y, epochs=4, batch_size=8, validation_data=(X[:9], y[:9]),
                            optimizer=fastnn.Adam(lr=0.01), seed=2, verbose=0)
        assert signal.getsignal(signal.SIGINT) is handler
        assert history.interrupted and history.epoch == [0, 1]
        assert model.optimizer.steps == 10 + 3 * 2
        assert np.isnan(history.history["val_loss"][1])
        fitted.append((model, history))
    (cpu, cpu_history), (gpu, gpu_history) = fitted
    np.testing.assert_allclose(gpu.params, cpu.params, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gpu.optimizer.state, cpu.optimizer.state, rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_allclose(gpu_history.history["loss"], cpu_history.history["loss"],
                               rtol=1e-10)


def test_a_long_device_epoch_shows_the_progress_line(monkeypatch, chunks):
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    chunks(1)
    monkeypatch.setattr(epochs, "PROGRESS_AFTER", 0.0)
    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    X, y = data("categorical_crossentropy", n=40)
    _, model = models("categorical_crossentropy", "softmax", 3)
    model.fit(X, y, epochs=1, batch_size=8, verbose=1)
    shown = terminal.getvalue()
    assert "\repoch 1/1  1/5 steps" in shown and "\repoch 1/1  4/5 steps" in shown
    assert "samples/s  ETA" in shown and "\r\x1b[K" in shown
