"""Each CUDA kernel against its CPU twin, on random inputs with shapes that are not
multiples of the tile (4) or the blocks (8 threads, 4 x 4)."""
import math
import zlib

import numpy as np
import pytest

from fastnn import kernels as cpu
from fastnn.kernels import _activations as cpu_act
from fastnn.kernels import _batchnorm as cpu_bn
from fastnn.kernels import _dropout as cpu_drop
from fastnn.kernels import _losses as cpu_losses
from fastnn.kernels import _optimizers as cpu_opt
from fastnn.kernels import _random as cpu_random
from fastnn.kernels import _schedules as cpu_sched
from fastnn.kernels import cuda as gpu
from fastnn.kernels.cuda import _config as config
from fastnn.kernels.cuda import _optimizers as gpu_opt
from fastnn.kernels.cuda import _random as gpu_random
from fastnn.kernels.cuda._backend import cuda
from fastnn.kernels._layout import Segments

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


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 3), (4, 9)])
@pytest.mark.parametrize("name", ["mse", "binary_crossentropy", "categorical_crossentropy",
                                  "poisson", "softmax_cross_entropy",
                                  "sigmoid_binary_cross_entropy", "exp_poisson"])
def test_losses(rng, name, shape, dtype, weighted):
    Z = fmat(rng, shape, dtype, 2.0)
    P = np.empty_like(Z)
    cpu_act.activation_forward(cpu_act.SOFTMAX if "categorical" in name else cpu_act.SIGMOID,
                               Z, P)
    T = np.zeros(shape, dtype, order="F")
    T[rng.integers(0, shape[0], shape[1]), np.arange(shape[1])] = 1
    fused = name in ("softmax_cross_entropy", "sigmoid_binary_cross_entropy", "exp_poisson")
    G_cpu, G_gpu = np.empty_like(Z), dev(np.empty_like(Z))
    c = rng.uniform(0, 2, shape[1]) if weighted else None    # per-sample factors
    c_gpu = None if c is None else dev(c)
    if fused:
        P_cpu, P_gpu = np.empty_like(Z), dev(np.empty_like(Z))
        v_cpu = getattr(cpu_losses, name)(Z, T, P_cpu, G_cpu, c)
        v_gpu = getattr(gpu, name)(dev(Z), dev(T), P_gpu, G_gpu, c_gpu)
        np.testing.assert_allclose(host(P_gpu), P_cpu, rtol=rtol(dtype), atol=1e-7)
    else:
        v_cpu = getattr(cpu_losses, name)(P, T, G_cpu, c)
        v_gpu = getattr(gpu, name)(dev(P), dev(T), G_gpu, c_gpu)
    assert v_gpu == pytest.approx(v_cpu, rel=rtol(dtype, True))
    np.testing.assert_allclose(host(G_gpu), G_cpu, rtol=rtol(dtype), atol=1e-7)
    code = cpu_losses.LOSSES["categorical_crossentropy" if "categorical" in name or
                             "softmax" in name else "binary_crossentropy"]
    assert gpu.count_correct(code, dev(P), dev(T)) == cpu_losses.count_correct(code, P, T)


# ------------------------------------------------------------------ random bits

@cuda.jit
def _stream_bits(key, step, site, out):
    e = cuda.grid(1)
    if e < out.shape[0]:
        out[e] = gpu_random.bits(gpu.stream(key, step, site), e)


@pytest.mark.parametrize("key,step,site", [(0, 0, 0), (2 ** 64 - 1, 12345, 3),
                                           (0x9E3779B97F4A7C15, 2 ** 40 + 7, 1)])
def test_random_bits_are_bit_identical(key, step, site):
    n = 13
    out = dev(np.zeros(n, np.uint64))
    blocks, threads = config.grid_1d(n)
    _stream_bits[blocks, threads](np.uint64(key), np.uint64(step), np.uint64(site), out)
    start = cpu_random.stream(np.uint64(key), step, site)
    expected = np.array([cpu_random.bits(np.uint64(start), e) for e in range(n)], np.uint64)
    np.testing.assert_array_equal(host(out), expected)


@pytest.mark.parametrize("n", [1, 7, 37])
@pytest.mark.parametrize("rate", [0.0, 0.25, 0.9])
def test_keep_mask_is_bit_identical(n, rate):
    key, step, site = np.uint64(0xDEADBEEF12345678), 5, 2
    expected = np.empty(n, np.int64)
    cpu_random.keep_mask(key, step, site, rate, expected)
    out = dev(np.full(n, -1, np.int64))
    gpu.keep_mask(key, step, site, rate, out)
    np.testing.assert_array_equal(host(out), expected)


# -------------------------------------------------------------------- dropout

def _start(key, step, site):
    """A stream start as a uint64 (the CPU kernels, called from Python, would type a
    Python int below 2^63 as int64, and int64 + uint64 goes through float64)."""
    return np.uint64(cpu_random.stream(np.uint64(key), step, site))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("rate", [0.3, 0.8])
def test_dropout_matches_cpu_bit_for_bit(rng, shape, dtype, rate):
    start = _start(11, 3, 1)
    A = fmat(rng, shape, dtype)
    for name in ("dropout_forward", "dropout_backward"):
        A_cpu, A_gpu = A.copy(order="F"), dev(A)
        getattr(cpu_drop, name)(A_cpu, rate, start)
        getattr(gpu, name)(A_gpu, rate, start)
        np.testing.assert_array_equal(host(A_gpu), A_cpu)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ["identity", "relu", "sigmoid", "tanh", "softplus"])
def test_dropout_activation_backward(rng, name, shape, dtype):
    code, rate = cpu_act.ACTIVATIONS[name], 0.4
    start = _start(5, 8, 2)
    A = np.empty(shape, dtype, order="F")
    cpu_act.activation_forward(code, fmat(rng, shape, dtype, 2.0), A)
    cpu_drop.dropout_forward(A, rate, start)            # the stored, dropped output
    D = fmat(rng, shape, dtype)
    D_cpu, D_gpu = D.copy(order="F"), dev(D)
    cpu_drop.dropout_activation_backward(code, A, D_cpu, rate, start)
    gpu.dropout_activation_backward(code, dev(A), D_gpu, rate, start)
    np.testing.assert_allclose(host(D_gpu), D_cpu, rtol=rtol(dtype), atol=1e-7)
    np.testing.assert_array_equal(host(D_gpu) == 0, D_cpu == 0)


# ------------------------------------------------------------------ batchnorm

def _bn_arrays(rng, m, dtype):
    gamma = (1.0 + 0.5 * rng.standard_normal(m)).astype(dtype)
    beta = rng.standard_normal(m).astype(dtype)
    return gamma, beta


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 2), (3, 5), (9, 7), (4, 1)])
@pytest.mark.parametrize("name", ["identity", "relu", "tanh", "sigmoid"])
def test_batchnorm_training_pass(rng, name, shape, dtype):
    code, (m, n), eps = cpu_act.ACTIVATIONS[name], shape, 1e-3
    Z = fmat(rng, shape, dtype, 2.0) + dtype(1.5)
    gamma, beta = _bn_arrays(rng, m, dtype)
    cpu_out = [Z.copy(order="F"), np.empty_like(Z), np.empty(m, dtype), np.empty(m, dtype),
               np.zeros(2 * m)]
    gpu_out = [dev(a) for a in cpu_out]
    cpu_bn.batchnorm_forward(cpu_out[0], gamma, beta, eps, code, *cpu_out[1:])
    gpu.batchnorm_forward(gpu_out[0], dev(gamma), dev(beta), eps, code, *gpu_out[1:])
    for g, c in zip(gpu_out, cpu_out):      # Y, Ẑ, μ, 1/σ, acc = (μ, σ²)
        np.testing.assert_allclose(host(g), c, rtol=rtol(dtype, True), atol=1e-6)
    mean, var = np.empty(m), np.empty(m)
    mean_gpu, var_gpu = dev(mean), dev(var)
    cpu_bn.batch_moments(Z, mean, var)
    gpu.batch_moments(dev(Z), mean_gpu, var_gpu)
    np.testing.assert_allclose(host(mean_gpu), mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(host(var_gpu), var, rtol=1e-12, atol=1e-14)
    running = [rng.standard_normal(m).astype(dtype), rng.uniform(0.5, 2, m).astype(dtype)]
    running_gpu = [dev(a) for a in running]
    cpu_bn.update_running(*running, mean, var, 0.1, n)
    gpu.update_running(*running_gpu, mean_gpu, var_gpu, 0.1, n)
    for g, c in zip(running_gpu, running):
        np.testing.assert_allclose(host(g), c, rtol=rtol(dtype), atol=1e-7)
    D = fmat(rng, shape, dtype)
    cpu_grads = [D.copy(order="F"), np.empty(m, dtype), np.empty(m, dtype), np.zeros(2 * m)]
    gpu_grads = [dev(a) for a in cpu_grads]
    Zhat, istd = cpu_out[1], cpu_out[3]
    cpu_bn.batchnorm_backward(cpu_grads[0], Zhat, gamma, istd, *cpu_grads[1:])
    gpu.batchnorm_backward(gpu_grads[0], dev(Zhat), dev(gamma), dev(istd), *gpu_grads[1:])
    for g, c in zip(gpu_grads, cpu_grads):  # dZ, dγ, dβ, acc
        np.testing.assert_allclose(host(g), c, rtol=rtol(dtype, True), atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (9, 7)])
@pytest.mark.parametrize("name", ["identity", "relu", "softplus", "softmax"])
def test_batchnorm_inference_pass(rng, name, shape, dtype):
    code, m = cpu_act.ACTIVATIONS[name], shape[0]
    Z = fmat(rng, shape, dtype, 2.0)
    gamma, beta = _bn_arrays(rng, m, dtype)
    running = [rng.standard_normal(m).astype(dtype), rng.uniform(0.5, 2, m).astype(dtype)]
    cpu_out = [Z.copy(order="F"), np.empty(m, dtype), np.empty(m, dtype)]
    gpu_out = [dev(a) for a in cpu_out]
    cpu_bn.batchnorm_inference(cpu_out[0], gamma, beta, *running, 1e-5, code, *cpu_out[1:])
    gpu.batchnorm_inference(gpu_out[0], dev(gamma), dev(beta), *(dev(a) for a in running),
                            1e-5, code, *gpu_out[1:])
    for g, c in zip(gpu_out, cpu_out):      # Y, scale, shift
        np.testing.assert_allclose(host(g), c, rtol=rtol(dtype), atol=1e-6)


def test_batchnorm_training_pass_with_softmax_output(rng):
    """Softmax, the one activation the affine pass cannot apply per element, runs over
    each column after it (y = γ ẑ + β, a = softmax(y))."""
    Z, (gamma, beta) = fmat(rng, (4, 6), np.float64), _bn_arrays(rng, 4, np.float64)
    Y = dev(Z)
    buffers = [dev(np.empty_like(Z)), dev(np.empty(4)), dev(np.empty(4)), dev(np.zeros(8))]
    gpu.batchnorm_forward(Y, dev(gamma), dev(beta), 1e-5, cpu_act.SOFTMAX, *buffers)
    affine = gamma[:, None] * (Z - Z.mean(axis=1, keepdims=True)) / np.sqrt(
        Z.var(axis=1, keepdims=True) + 1e-5) + beta[:, None]
    expected = np.exp(affine) / np.exp(affine).sum(axis=0)
    np.testing.assert_allclose(host(Y), expected, rtol=1e-12)


# ------------------------------------------------------------------ schedules

@pytest.mark.parametrize("table", [[cpu_sched.INVERSE_TIME, 0.1, 0.01, 0, 0, 1],
                                   [cpu_sched.STEP, 0.1, 3, 0.5, 0, 1],
                                   [cpu_sched.EXPONENTIAL, 0.1, 0.9, 0, 0, 0.5],
                                   [cpu_sched.COSINE, 0.1, 10, 3, 0.01, 1],
                                   [cpu_sched.COSINE, 0.1, 7, 0, 0.0, 0.25]])
def test_learning_rate(table):
    table = np.array(table, dtype=np.float64)
    table_gpu = dev(table)
    for t in (0, 1, 2, 3, 5, 9, 10, 12):
        assert gpu.host_learning_rate(table_gpu, t) == pytest.approx(
            cpu_sched.learning_rate(table, t), rel=1e-14, abs=1e-300)
    assert gpu.host_learning_rate(table, 4) == pytest.approx(cpu_sched.learning_rate(table, 4),
                                                             rel=1e-14)


# ----------------------------------------------------------------- optimizers

N_PARAMS = 19


def _segments():
    """Three tensors: a weight (penalized, decayed), a bias, a third one (decayed)."""
    return Segments(np.array([0, 12, 15, 19], dtype=np.int64), np.array([0.01, 0.0, 0.0]),
                    np.array([0.1, 0.0, 0.02]), np.array([1.0, 0.0, 1.0]))


def _vectors(rng, dtype, rows):
    p, g = rng.standard_normal(N_PARAMS).astype(dtype), rng.standard_normal(N_PARAMS).astype(dtype)
    p[3] = 0                                     # sign(0) = 0
    return p, g, np.abs(rng.standard_normal((rows, N_PARAMS))).astype(dtype) * dtype(0.1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,hp,schedule,clip", [
    ("sgd", [0.0, 0.0], [cpu_sched.INVERSE_TIME, 0.1, 0.5, 0, 0, 1], [0.5, math.inf]),
    ("sgd", [0.9, 1.0], [cpu_sched.STEP, 0.1, 2, 0.5, 0, 1], [math.inf, 0.3]),
    ("sgd", [0.9, 0.0], [cpu_sched.EXPONENTIAL, 0.1, 0.9, 0, 0, 1], [2.0, 0.5]),
    ("adagrad", [1e-7], [cpu_sched.COSINE, 0.1, 5, 1, 0.01, 1], [0.5, math.inf]),
    ("rmsprop", [0.9, 1e-7], [cpu_sched.INVERSE_TIME, 0.01, 0, 0, 0, 0.5],
     [math.inf, math.inf]),
    ("adam", [0.9, 0.999, 1e-8, 0.0], [cpu_sched.COSINE, 0.01, 6, 2, 0.0, 1], [0.5, 0.2]),
    ("adamw", [0.9, 0.999, 1e-8, 0.1], [cpu_sched.COSINE, 0.01, 6, 1, 0.001, 1], [1.0, math.inf]),
    ("lamb", [0.9, 0.999, 1e-6, 0.1], [cpu_sched.STEP, 0.01, 2, 0.5, 0, 1], [math.inf, 0.3]),
    ("lamb", [0.9, 0.999, 1e-6, 0.0], [cpu_sched.INVERSE_TIME, 0.01, 0.1, 0, 0, 1],
     [0.5, math.inf]),
    ("lion", [0.9, 0.99, 0.1], [cpu_sched.COSINE, 0.01, 6, 1, 0.001, 1], [1.0, 0.3])])
def test_optimizer_update(rng, name, hp, schedule, clip, dtype):
    """Three updates by an Update rule (schedule and clipping evaluated on the device)."""
    code = cpu_opt.OPTIMIZERS[name]
    upd = cpu_opt.make_update(code, np.array(hp), np.array(schedule, dtype=np.float64),
                              np.array(clip))
    seg = _segments()
    p, g, state = _vectors(rng, dtype, cpu_opt.STATE_VECTORS[code])
    p_gpu, g_gpu, state_gpu = dev(p), dev(g), dev(state)
    seg_gpu, upd_gpu = gpu_opt.device_segments(seg), upd._replace(schedule=dev(upd.schedule))
    for step in range(3):
        cpu_opt.optimizer_update(upd, seg, p, g, state, step)
        gpu.optimizer_update(upd_gpu, seg_gpu, p_gpu, g_gpu, state_gpu, step)
    np.testing.assert_allclose(host(p_gpu), p, rtol=rtol(dtype, True), atol=1e-6)
    np.testing.assert_allclose(host(state_gpu), state, rtol=rtol(dtype, True), atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["sgd", "adagrad", "rmsprop", "adam", "lamb"])
def test_optimizer_twins(rng, name, dtype):
    """The single-optimizer twins, with a given gradient scale and clip value."""
    seg = _segments()
    p, g, state = _vectors(rng, dtype, 2)
    p_gpu, state_gpu = dev(p), dev(state)
    args = {"sgd": lambda s: (s[0], 0.1, 0.9, True),
            "adagrad": lambda s: (s[0], 0.1, 1e-7),
            "rmsprop": lambda s: (s[0], 0.01, 0.9, 1e-7),
            "adam": lambda s: (s[0], s[1], 2, 0.01, 0.9, 0.999, 1e-8, 0.05),
            "lamb": lambda s: (s[0], s[1], 2, 0.01, 0.9, 0.999, 1e-6, 0.05)}[name]
    update = name + "_update"
    getattr(cpu_opt, update)(p, g, *args(state), seg, 0.7, 0.4)
    getattr(gpu, update)(p_gpu, dev(g), *args(state_gpu), seg, 0.7, 0.4)
    np.testing.assert_allclose(host(p_gpu), p, rtol=rtol(dtype, True), atol=1e-6)
    np.testing.assert_allclose(host(state_gpu), state, rtol=rtol(dtype, True), atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_norm_clip_and_penalty(rng, dtype):
    seg = _segments()
    p, g, _ = _vectors(rng, dtype, 1)
    p_gpu, g_gpu = dev(p), dev(g)
    for clip_value in (math.inf, 0.5):
        assert gpu.grad_norm(p_gpu, g_gpu, seg, clip_value) == pytest.approx(
            cpu_opt.grad_norm(p, g, seg, clip_value), rel=rtol(dtype, True))
        for max_norm in (math.inf, 0.5, 100.0):
            assert gpu.clip_factor(p_gpu, g_gpu, seg, max_norm, clip_value) == pytest.approx(
                cpu_opt.clip_factor(p, g, seg, max_norm, clip_value), rel=rtol(dtype, True))
    penalty = cpu_opt.add_penalty_grad(p, g, seg)
    assert gpu.add_penalty_grad(p_gpu, g_gpu, seg) == pytest.approx(penalty,
                                                                    rel=rtol(dtype, True))
    np.testing.assert_allclose(host(g_gpu), g, rtol=rtol(dtype), atol=1e-7)
