"""fastnn.kernels.cuda's network surface against fastnn.kernels on the simulator: the
same names and argument order, the passes and loops giving the CPU's results on the
same buffers, a custom loop of the user's own on the device, and check_layout."""
import inspect

import numpy as np
import pytest

import fastnn
from fastnn import kernels as K
from fastnn.kernels import cuda as KC
from fastnn.kernels.cuda._backend import cuda


def test_every_public_kernel_has_its_twin_with_the_same_arguments():
    assert set(K.__all__) <= set(KC.__all__)
    assert set(KC.__all__) - set(K.__all__) == set(KC.CUDA_ONLY)
    compared = 0
    for name in K.__all__:
        cpu, gpu = getattr(K, name), getattr(KC, name)
        if not callable(cpu) or isinstance(cpu, type):   # codes, modes, table types
            assert gpu is cpu, name
            continue
        cpu = getattr(cpu, "py_func", cpu)
        gpu = getattr(gpu, "py_func", getattr(gpu, "fn", gpu))   # device functions
        assert inspect.isfunction(cpu) and inspect.isfunction(gpu), name
        cpu_params = list(inspect.signature(cpu).parameters)
        gpu_params = inspect.signature(gpu).parameters
        assert list(gpu_params)[:len(cpu_params)] == cpu_params, name
        extra = list(gpu_params.values())[len(cpu_params):]
        assert all(p.default is not inspect.Parameter.empty for p in extra), name
        compared += 1
    assert compared >= 50


def model(dtype, *, batchnorm=False, dropout=0.0, loss="mse", n_out=2, seed=0):
    rng = np.random.default_rng(seed)
    n_in, hidden = int(rng.integers(1, 6)), int(rng.integers(1, 7))
    layers = [fastnn.Dense(n_in, hidden, activation=None if batchnorm else "tanh", l2=0.01)]
    if batchnorm:
        layers += [fastnn.BatchNorm(hidden, momentum=0.3), fastnn.Activation("relu")]
    if dropout:
        layers.append(fastnn.Dropout(dropout))
    last = {"mse": None, "categorical_crossentropy": "softmax",
            "binary_crossentropy": "sigmoid"}[loss]
    layers.append(fastnn.Dense(hidden, n_out, activation=last, l1=0.001))
    return fastnn.Sequential(layers, loss=loss, dtype=dtype, seed=seed)


def data(net_model, n, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, net_model.n_inputs)).astype(net_model.dtype)
    if net_model.loss_name == "mse":
        T = rng.standard_normal((n, net_model.n_outputs))
    elif net_model.loss_name == "categorical_crossentropy":
        T = np.eye(net_model.n_outputs)[rng.integers(0, net_model.n_outputs, n)]
    else:
        T = rng.integers(0, 2, (n, net_model.n_outputs))
    return X, T.astype(net_model.dtype)


CASES = [dict(), dict(batchnorm=True), dict(dropout=0.3, loss="categorical_crossentropy", n_out=3),
         dict(batchnorm=True, dropout=0.2, loss="binary_crossentropy", n_out=1)]
TOL = {"float64": 1e-10, "float32": 2e-4}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_forward_backward_matches_the_cpu(case, dtype):
    m = model(dtype, seed=case, **CASES[case])
    nb = int(np.random.default_rng(case).integers(1, 9))
    X, T = data(m, nb + 3)
    layout = m.layout
    host = layout.buffers(nb)
    perm = np.random.default_rng(2).permutation(nb + 3).astype(np.int64)
    net, buf = KC.to_device(layout.net, host)
    L = layout.net.table.shape[0]

    # the views are compiled-code functions on the CPU; their Python twins cut host arrays
    Xb, Tb = KC.output_view(host.ws, layout.net, nb, 0, nb), KC.target_view(host.ws, layout.net, nb, nb)
    K.gather_batch(X, T, perm, 2, Xb, Tb)
    loss = K.forward_backward(layout.net, host, Xb, Tb, nb, np.int64(K.TRAIN_UPDATE), 4)

    Xd, Td = KC.output_view(buf.ws, net, nb, 0, nb), KC.target_view(buf.ws, net, nb, nb)
    KC.gather_batch(cuda.to_device(X), cuda.to_device(T), cuda.to_device(perm), 2, Xd, Td)
    np.testing.assert_array_equal(Xd.copy_to_host(), Xb)
    device_loss = KC.forward_backward(net, buf, Xd, Td, nb, KC.TRAIN_UPDATE, 4)

    tol = TOL[dtype]
    assert device_loss == pytest.approx(loss, rel=tol)
    np.testing.assert_allclose(buf.grads.copy_to_host(), host.grads, rtol=tol, atol=tol)
    np.testing.assert_allclose(KC.output_view(buf.ws, net, nb, L, nb).copy_to_host(),
                               KC.output_view(host.ws, layout.net, nb, L, nb), rtol=tol, atol=tol)
    if m.stats.size:   # TRAIN_UPDATE moved the running statistics alike
        np.testing.assert_allclose(buf.stats.copy_to_host(), host.stats, rtol=tol, atol=tol)
    for l in range(L):
        np.testing.assert_allclose(KC.weight_view(buf.grads, net, l).copy_to_host(),
                                   KC.weight_view(host.grads, layout.net, l), rtol=tol, atol=tol)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_train_and_infer_batches_match_the_cpu(case, dtype, weighted):
    """The same sums and parameters; with sample weights (the minibatches' weighted mean
    losses) too."""
    m = model(dtype, seed=case + 10, **CASES[case])
    n, batch_size = 13, 4
    X, T = data(m, n, seed=case)
    sw = np.random.default_rng(case).uniform(0, 2, n) if weighted else None
    sw_d = None if sw is None else cuda.to_device(sw)
    optimizer = fastnn.Adam(lr=fastnn.CosineDecay(0.05, total_steps=10))
    layout = m.layout
    host = layout.buffers(batch_size, optimizer)
    upd = layout.update(optimizer, clip_norm=1.0)
    net, buf = KC.to_device(layout.net, host)
    Xd, Td = cuda.to_device(X), cuda.to_device(T)
    step = device_step = 3
    total = device_total = 0.0
    correct = device_correct = 0
    for seed, (start, stop) in enumerate([(0, n), (0, 8), (8, n)]):
        perm = np.random.default_rng(seed).permutation(n).astype(np.int64)
        total, correct, step = K.train_batches(X, T, perm, start, stop, batch_size, layout.net,
                                               upd, host, step, total, correct, sw)
        device_total, device_correct, device_step = KC.train_batches(
            Xd, Td, cuda.to_device(perm), start, stop, batch_size, net, upd, buf, device_step,
            device_total, device_correct, sw_d)
    tol = TOL[dtype]
    assert (device_step, device_correct) == (step, correct)
    assert device_total == pytest.approx(total, rel=tol)
    copied = host._replace(**{name: np.empty_like(getattr(host, name))
                              for name in ("params", "grads", "state", "stats")})
    KC.copy_to_host(buf, copied)
    for name in ("params", "grads", "state", "stats"):
        np.testing.assert_allclose(getattr(copied, name), getattr(host, name), rtol=tol * 10,
                                   atol=tol, err_msg=name)

    cap = 5
    host = layout.buffers(cap)
    none = np.empty((0, m.n_outputs), dtype=m.dtype)
    expected = K.infer_batches(X, T, none, layout.net, host, cap, sw)
    out = np.empty((n, m.n_outputs), dtype=m.dtype)
    K.infer_batches(X, none, out, layout.net, host, cap)
    net, buf = KC.to_device(layout.net, host)
    device_none = cuda.device_array((0, m.n_outputs), dtype=m.dtype)
    got = KC.infer_batches(Xd, Td, device_none, net, buf, cap, sw_d)
    assert got[1] == expected[1] and got[0] == pytest.approx(expected[0], rel=tol)
    device_out = cuda.device_array((n, m.n_outputs), dtype=m.dtype)
    assert KC.infer_batches(Xd, device_none, device_out, net, buf, cap) == (0.0, 0)
    np.testing.assert_allclose(device_out.copy_to_host(), out, rtol=tol, atol=tol)


@pytest.fixture(scope="module")
def custom_loop_cuda(script):
    return script("custom_loop_cuda")


def device_mse(Y, T, G, total, weight):
    """fastnn's MSE kernel in the user's loss slot of the script's epoch."""
    from fastnn.kernels.cuda._losses import accumulate_loss

    accumulate_loss(K.LOSSES["mse"], Y, T, G, total, float(weight))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", [0, 1])
def test_the_custom_device_loop_with_the_mse_kernel_is_train_batches(custom_loop_cuda, case,
                                                                     dtype):
    """scripts/custom_loop_cuda.py's epoch with fastnn's MSE in place of the user's loss
    takes train_batches' steps (the same kernels in the same order): equal to rounding,
    since the device's sums (the clip norm, BatchNorm's) are atomic adds, whose order
    varies from run to run on a GPU as on the simulator."""
    m = model(dtype, seed=5, **CASES[case])
    n, batch_size = 17, 5
    X, T = data(m, n)
    perm = cuda.to_device(np.random.default_rng(3).permutation(n).astype(np.int64))
    Xd, Td = cuda.to_device(X), cuda.to_device(T)
    results = {}
    for name in ("train_batches", "custom loop"):
        optimizer = fastnn.Adam(lr=0.05)
        layout = m.layout
        net, buf = KC.to_device(layout.net, layout.buffers(batch_size, optimizer))
        upd = KC.update_to_device(layout.update(optimizer, clip_norm=0.5))
        total, step = cuda.to_device(np.zeros(1)), 0
        for _ in range(2):
            if name == "train_batches":
                _, _, step = KC.train_batches(Xd, Td, perm, 0, n, batch_size, net, upd, buf, step,
                                              0.0, 0)
            else:
                step = custom_loop_cuda.epoch(Xd, Td, perm, batch_size, net, buf, upd, step,
                                              device_mse, total)
        results[name] = (buf.params.copy_to_host(), buf.stats.copy_to_host(), step)
    tol = TOL[dtype]
    np.testing.assert_allclose(results["custom loop"][0], results["train_batches"][0],
                               rtol=tol, atol=tol)
    np.testing.assert_allclose(results["custom loop"][1], results["train_batches"][1],
                               rtol=tol, atol=tol)
    assert results["custom loop"][2] == results["train_batches"][2] == 8


def test_the_huber_device_loop_trains_the_model_and_fit_continues(custom_loop_cuda):
    m = model("float32", seed=6)
    X, T = data(m, 40)
    optimizer = fastnn.Adam(lr=0.02)
    before = m.params.copy()
    losses = custom_loop_cuda.train(m, X, T, epochs=4, batch_size=8, optimizer=optimizer,
                                    log=None)
    assert len(losses) == 4 and losses[-1] < losses[0] and np.all(np.isfinite(losses))
    assert optimizer.steps == 20 and not np.allclose(m.params, before)
    assert np.abs(optimizer.state).sum() > 0            # Adam's moments came back
    state = optimizer.state.copy()
    m.fit(X, T, epochs=1, batch_size=8, optimizer=optimizer, verbose=0)   # continues with them
    assert optimizer.steps == 25 and not np.array_equal(optimizer.state, state)


def test_check_layout_on_the_device_names_the_argument():
    m = model("float32", seed=2)
    layout = m.layout
    optimizer = fastnn.Adam()
    host = layout.buffers(4, optimizer)
    net, buf = KC.to_device(layout.net, host)
    X, T = data(m, 6)
    Xd, Td = cuda.to_device(X), cuda.to_device(T)
    upd = layout.update(optimizer)
    KC.check_layout(net, buf, batch_size=4, X=Xd, T=Td,
                    perm=cuda.to_device(np.arange(6, dtype=np.int64)), upd=upd)
    with pytest.raises(TypeError, match="to_device"):
        KC.check_layout(layout.net, buf, batch_size=4)
    with pytest.raises(TypeError, match="X must be a device array"):
        KC.check_layout(net, buf, batch_size=4, X=X)
    with pytest.raises(ValueError, match="buf.ws"):
        KC.check_layout(net, buf, batch_size=5)
    with pytest.raises(ValueError, match="buf.acc"):
        KC.check_layout(net, buf._replace(acc=buf.acc[:2]), batch_size=4)
    with pytest.raises(TypeError, match="T must be float32"):
        KC.check_layout(net, buf, batch_size=4, X=Xd, T=cuda.to_device(T.astype(np.float64)))
    with pytest.raises(ValueError, match=r"perm holds indices outside \[0, 6\)"):
        KC.check_layout(net, buf, batch_size=4, X=Xd,
                        perm=cuda.to_device(np.array([0, 6], dtype=np.int64)))
    with pytest.raises(ValueError, match="optimizer needs"):
        KC.check_layout(net, buf._replace(state=cuda.to_device(host.state[:1])), batch_size=4,
                        upd=upd)
