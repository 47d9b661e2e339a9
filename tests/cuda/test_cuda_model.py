"""Sequential(device="cuda") on the simulator: same results as on the CPU, and no
host transfer per kernel (transfers counted by wrapping them)."""
import numpy as np
import pytest

import fastnn
from fastnn.kernels.cuda.backend import cuda


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
    y = rng.standard_normal((n, n_out)) if loss == "mse" else rng.integers(0, n_out, n)
    return X, y


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-10), ("float32", 1e-4)])
@pytest.mark.parametrize("loss,last", [("mse", None), ("categorical_crossentropy", "softmax")])
def test_training_on_device_matches_cpu(loss, last, dtype, tol):
    X, y = data(loss)
    cpu_model, gpu_model = models(loss, last, 3, dtype)
    runs = []
    for model in (cpu_model, gpu_model):
        runs.append(model.fit(X, y, epochs=2, batch_size=8, optimizer=fastnn.Adam(lr=0.01),
                              validation_data=(X[:5], y[:5]), seed=5, verbose=0).history)
    for key in runs[0]:
        if key != "time":
            np.testing.assert_allclose(runs[1][key], runs[0][key], rtol=tol)
    np.testing.assert_allclose(gpu_model.params, cpu_model.params, rtol=tol * 10, atol=tol)
    np.testing.assert_allclose(gpu_model.forward(X), cpu_model.forward(X), rtol=tol, atol=tol)
    assert gpu_model.evaluate(X, y)["loss"] == pytest.approx(cpu_model.evaluate(X, y)["loss"],
                                                             rel=tol)


class TransferCounter:
    def __init__(self, monkeypatch):
        self.count = 0
        to_device = cuda.to_device
        probe = cuda.to_device(np.zeros(1))
        array_type = type(probe)
        copy_to_host = array_type.copy_to_host

        def counted_to_device(*args, **kwargs):
            self.count += 1
            return to_device(*args, **kwargs)

        def counted_copy_to_host(*args, **kwargs):
            self.count += 1
            return copy_to_host(*args, **kwargs)

        monkeypatch.setattr(cuda, "to_device", counted_to_device)
        monkeypatch.setattr(array_type, "copy_to_host", counted_copy_to_host)


def test_no_host_round_trip_per_kernel(monkeypatch):
    X, y = data("categorical_crossentropy", n=16)
    counts = []
    for batch_size in (8, 2):           # 2 and 8 steps per epoch
        _, model = models("categorical_crossentropy", "softmax", 3)
        counter = TransferCounter(monkeypatch)
        model.fit(X, y, epochs=2, batch_size=batch_size, verbose=0)
        counts.append(counter.count)
    assert counts[0] == counts[1], counts   # transfers do not grow with the steps
    assert counts[0] <= 20, counts          # a handful per call and per epoch


def test_device_argument_is_checked():
    with pytest.raises(ValueError, match="device"):
        fastnn.Sequential([fastnn.Dense(2, 1)], device="tpu")
