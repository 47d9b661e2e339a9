"""Each CUDA kernel against its CPU twin, on random inputs with shapes that are not
multiples of the tile (4) or the blocks (8 threads, 4 x 4)."""
import zlib

import numpy as np
import pytest

from fastnn import kernels as cpu
from fastnn.kernels import activations as cpu_act
from fastnn.kernels import losses as cpu_losses
from fastnn.kernels import optimizers as cpu_opt
from fastnn.kernels import cuda as gpu
from fastnn.kernels.cuda.backend import cuda

DTYPES = [np.float32, np.float64]
SHAPES = [(1, 1), (3, 5), (9, 7)]


@pytest.fixture
def rng(request):
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


def fmat(rng, shape, dtype, scale=1.0):
    return np.asfortranarray(rng.standard_normal(shape) * scale).astype(dtype, order="F")


def dev(a):
    return cuda.to_device(a)


def host(d):
    return d.copy_to_host()


def rtol(dtype, product=False):
    return (1e-4 if product else 1e-5) if dtype == np.float32 else 1e-12


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", list(cpu_act.ACTIVATIONS))
def test_activation_forward_and_backward(rng, name, shape, dtype):
    code = cpu_act.ACTIVATIONS[name]
    Z, dA = fmat(rng, shape, dtype, 2.0), fmat(rng, shape, dtype)
    b = rng.standard_normal(shape[0]).astype(dtype)
    A_cpu, A_gpu = np.empty_like(Z), dev(np.empty_like(Z))
    cpu_act.activation_forward(code, Z, A_cpu)
    gpu.activation_forward(code, dev(Z), A_gpu)
    np.testing.assert_allclose(host(A_gpu), A_cpu, rtol=rtol(dtype), atol=1e-7)
    Y_cpu, Y_gpu = Z.copy(order="F"), dev(Z)
    cpu_act.bias_activation_forward(Y_cpu, b, code)
    gpu.bias_activation_forward(Y_gpu, dev(b), code)
    np.testing.assert_allclose(host(Y_gpu), Y_cpu, rtol=rtol(dtype), atol=1e-7)
    dZ_cpu, db_cpu = np.empty_like(dA), np.empty(shape[0], dtype)
    dZ_gpu, db_gpu = dev(np.empty_like(dA)), dev(np.empty(shape[0], dtype))
    cpu_act.activation_backward_bias(code, A_cpu, dA, dZ_cpu, db_cpu)
    gpu.activation_backward_bias(code, dev(A_cpu), dev(dA), dZ_gpu, db_gpu)
    np.testing.assert_allclose(host(dZ_gpu), dZ_cpu, rtol=rtol(dtype), atol=1e-7)
    np.testing.assert_allclose(host(db_gpu), db_cpu, rtol=rtol(dtype, True), atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out,inp,batch", [(1, 1, 1), (5, 3, 7), (9, 6, 10)])
@pytest.mark.parametrize("name", ["identity", "relu", "softmax"])
def test_dense_forward_and_backprop(rng, out, inp, batch, dtype, name):
    code = cpu_act.ACTIVATIONS[name]
    W = rng.standard_normal((out, inp)).astype(dtype)
    b = rng.standard_normal(out).astype(dtype)
    X, dA = fmat(rng, (inp, batch), dtype), fmat(rng, (out, batch), dtype)
    Y_cpu, Y_gpu = np.empty((out, batch), dtype, order="F"), dev(np.empty((out, batch), dtype,
                                                                          order="F"))
    cpu.dense_forward(W, b, X, code, Y_cpu)
    gpu.dense_forward(dev(W), dev(b), dev(X), code, Y_gpu)
    np.testing.assert_allclose(host(Y_gpu), Y_cpu, rtol=rtol(dtype, True), atol=1e-6)
    bwd = "identity" if name == "softmax" else name
    outs_cpu = [np.empty_like(dA), np.empty_like(W), np.empty(out, dtype),
                np.empty((inp, batch), dtype, order="F")]
    outs_gpu = [dev(a) for a in outs_cpu]
    cpu.dense_backward(W, X, Y_cpu, dA, cpu_act.ACTIVATIONS[bwd], *outs_cpu)
    gpu.dense_backward(dev(W), dev(X), dev(Y_cpu), dev(dA), cpu_act.ACTIVATIONS[bwd], *outs_gpu)
    for g, c in zip(outs_gpu, outs_cpu):
        np.testing.assert_allclose(host(g), c, rtol=rtol(dtype, True), atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_jvp(rng, dtype):
    A = np.empty((6, 5), dtype, order="F")
    cpu_act.activation_forward(cpu_act.SOFTMAX, fmat(rng, (6, 5), dtype), A)
    dA = fmat(rng, (6, 5), dtype)
    out_cpu, out_gpu = np.empty_like(dA), dev(np.empty_like(dA))
    cpu_act.softmax_jvp(A, dA, out_cpu)
    gpu.softmax_jvp(dev(A), dev(dA), out_gpu)
    np.testing.assert_allclose(host(out_gpu), out_cpu, rtol=rtol(dtype, True), atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 3), (4, 9)])
@pytest.mark.parametrize("name", ["mse", "binary_crossentropy", "categorical_crossentropy",
                                  "softmax_cross_entropy", "sigmoid_binary_cross_entropy"])
def test_losses(rng, name, shape, dtype):
    Z = fmat(rng, shape, dtype, 2.0)
    P = np.empty_like(Z)
    cpu_act.activation_forward(cpu_act.SOFTMAX if "categorical" in name else cpu_act.SIGMOID,
                               Z, P)
    T = np.zeros(shape, dtype, order="F")
    T[rng.integers(0, shape[0], shape[1]), np.arange(shape[1])] = 1
    fused = name in ("softmax_cross_entropy", "sigmoid_binary_cross_entropy")
    G_cpu, G_gpu = np.empty_like(Z), dev(np.empty_like(Z))
    if fused:
        P_cpu, P_gpu = np.empty_like(Z), dev(np.empty_like(Z))
        v_cpu = getattr(cpu_losses, name)(Z, T, P_cpu, G_cpu)
        v_gpu = getattr(gpu, name)(dev(Z), dev(T), P_gpu, G_gpu)
        np.testing.assert_allclose(host(P_gpu), P_cpu, rtol=rtol(dtype), atol=1e-7)
    else:
        v_cpu = getattr(cpu_losses, name)(P, T, G_cpu)
        v_gpu = getattr(gpu, name)(dev(P), dev(T), G_gpu)
    assert v_gpu == pytest.approx(v_cpu, rel=rtol(dtype, True))
    np.testing.assert_allclose(host(G_gpu), G_cpu, rtol=rtol(dtype), atol=1e-7)
    code = cpu_losses.LOSSES["categorical_crossentropy" if "categorical" in name or
                             "softmax" in name else "binary_crossentropy"]
    assert gpu.count_correct(code, dev(P), dev(T)) == cpu_losses.count_correct(code, P, T)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,hp", [("sgd", [0.1, 0.0, 0.0, 0.0, 0.0]),
                                     ("sgd", [0.1, 0.1, 0.9, 1.0, 0.0]),
                                     ("adagrad", [0.1, 0.0, 1e-7, 0.0, 0.0]),
                                     ("rmsprop", [0.01, 0.2, 0.9, 1e-7, 0.0]),
                                     ("adam", [0.01, 0.1, 0.9, 0.999, 1e-8])])
def test_optimizer_updates(rng, name, hp, dtype):
    n = 19
    code = cpu_opt.OPTIMIZERS[name]
    p, g = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    bounds = np.array([0, 12, 19], dtype=np.int64)
    l1, l2 = np.array([0.01, 0.0]), np.array([0.1, 0.0])
    state = np.zeros((cpu_opt.STATE_VECTORS[code], n), dtype)
    p_gpu, state_gpu = dev(p), dev(state)
    hp = np.array(hp)
    for step in range(3):
        cpu_opt.optimizer_update(code, p, g, state, hp, step, bounds, l1, l2)
        gpu.optimizer_update(code, p_gpu, dev(g), state_gpu, hp, step, dev(bounds), dev(l1),
                             dev(l2))
    np.testing.assert_allclose(host(p_gpu), p, rtol=rtol(dtype), atol=1e-7)
    g_cpu = g.copy()
    penalty = cpu_opt.add_penalty_grad(p, g_cpu, bounds, l1, l2)
    g_gpu = dev(g)
    assert gpu.add_penalty_grad(dev(p), g_gpu, dev(bounds), dev(l1), dev(l2)) == \
        pytest.approx(penalty, rel=rtol(dtype, True))
    np.testing.assert_allclose(host(g_gpu), g_cpu, rtol=rtol(dtype), atol=1e-7)
