"""Every CPU kernel against the float64 references of tests/reference.py, on random
shapes: size 1, odd sizes, and sizes larger than any chunk; float32 and float64."""
import zlib

import numpy as np
import pytest

import reference as ref
from fastnn.kernels import _activations as act
from fastnn.kernels import _dense as dense, _losses as losses, _optimizers as optimizers
from fastnn.kernels._crossover import DOT_FORM_LIMIT, OUTER_FORM_LIMIT
from fastnn.kernels._layout import Segments
from fastnn.kernels._matmul import matmul, matmul_blas, matmul_loops

DTYPES = [np.float32, np.float64]
SHAPES = [(1, 1), (1, 9), (5, 1), (7, 33), (64, 64), (257, 515)]
DENSE_SHAPES = [(1, 1, 1), (3, 7, 5), (33, 17, 65), (300, 257, 129)]  # (out, in, batch)
ELEMENTWISE = ["identity", "relu", "sigmoid", "tanh", "softplus", "exp"]


def rtol(dtype, product=False):
    return (1e-4 if product else 1e-5) if dtype == np.float32 else 1e-12


def rel_norm_error(out, expected):
    out, expected = np.asarray(out, np.float64), np.asarray(expected, np.float64)
    return np.linalg.norm(out - expected) / max(np.linalg.norm(expected), 1e-300)


def fmat(rng, shape, dtype, scale=1.0):
    """A column-major (features, batch) matrix, as the model lays them out."""
    return np.asfortranarray(rng.standard_normal(shape) * scale).astype(dtype, order="F")


@pytest.fixture
def rng(request):
    """A generator seeded by the test's name and parameters: reproducible, varied."""
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ELEMENTWISE + ["softmax"])
def test_activation_forward(rng, name, shape, dtype):
    Z = fmat(rng, shape, dtype, 3.0)
    A = np.empty_like(Z)
    act.activation_forward(act.ACTIVATIONS[name], Z, A)
    np.testing.assert_allclose(A, ref.activation(name, Z), rtol=rtol(dtype), atol=1e-30)
    b = rng.standard_normal(shape[0]).astype(dtype)
    Y = Z.copy(order="F")
    act.bias_activation_forward(Y, b, act.ACTIVATIONS[name])
    np.testing.assert_allclose(Y, ref.activation(name, ref.f64(Z) + ref.f64(b)[:, None]),
                               rtol=rtol(dtype) * 4, atol=1e-6 if dtype == np.float32 else 0)


@pytest.mark.parametrize("name", [n for n in ELEMENTWISE if n != "exp"] + ["softmax"])
def test_activations_are_finite_for_huge_inputs(name):
    """(exp is not: e^10⁴ overflows to ∞ as it should; the Poisson loss then reports it.)"""
    Z = np.asfortranarray([[-1e4, -100.0, 0.0, 100.0, 1e4]], dtype=np.float32).T
    A = np.empty_like(Z)
    act.activation_forward(act.ACTIVATIONS[name], Z, A)
    assert np.isfinite(A).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("in_place", [False, True])
def test_activation_backward_from_output(rng, name, shape, dtype, in_place):
    Z = fmat(rng, shape, np.float64, 2.0)
    A = ref.activation(name, Z).astype(dtype, order="F")
    dA = fmat(rng, shape, dtype)
    dZ = dA.copy(order="F") if in_place else np.empty_like(dA)
    act.activation_backward(act.ACTIVATIONS[name], A, dZ if in_place else dA, dZ)
    if dtype == np.float64:   # the derivative written from the output equals f'(Z)
        np.testing.assert_allclose(dZ, dA * ref.derivative(name, Z), rtol=1e-9, atol=1e-15)
    # the kernel's arithmetic, from the same (rounded) output
    a = ref.f64(A)
    from_output = {"identity": np.ones_like(a), "relu": (a > 0) * 1.0, "sigmoid": a * (1 - a),
                   "tanh": 1 - a * a, "softplus": -np.expm1(-a), "exp": a}[name]
    np.testing.assert_allclose(dZ, ref.f64(dA) * from_output, rtol=rtol(dtype),
                               atol=1e-30 if dtype == np.float32 else 1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (5, 4), (10, 33), (129, 7)])
def test_softmax_jvp_against_explicit_jacobian(rng, shape, dtype):
    A = ref.activation("softmax", fmat(rng, shape, np.float64, 2.0)).astype(dtype, order="F")
    dA = fmat(rng, shape, dtype)
    dZ = np.empty_like(dA)
    act.softmax_jvp(A, dA, dZ)
    expected = ref.softmax_backward(A, dA)
    assert rel_norm_error(dZ, expected) <= rtol(dtype, product=True)
    # the notes' form (A ⊙ (I − Aᵀ)) · dL/dy, A the matrix whose row i is all y_i
    a, v = ref.f64(A[:, 0]), ref.f64(dA[:, 0])
    Amat = np.repeat(a[:, None], len(a), axis=1)
    np.testing.assert_allclose((Amat * (np.eye(len(a)) - Amat.T)) @ v, expected[:, 0],
                               rtol=1e-12, atol=1e-15)
    act.activation_backward(act.SOFTMAX, A, dA, dA)   # in place, through the dispatcher
    assert rel_norm_error(dA, expected) <= rtol(dtype, product=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_row_sum(rng, shape, dtype):
    D = fmat(rng, shape, dtype)
    db = np.full(shape[0], 99, dtype)
    act.row_sum(D, db)
    assert rel_norm_error(db, ref.f64(D).sum(axis=1)) <= rtol(dtype, product=True)


MATMUL_PATHS = {"blas": matmul_blas, "loops": matmul_loops}
# (m, k, n): ones in every place, odd sizes, a remainder in every tile of the loops
MATMUL_SHAPES = DENSE_SHAPES + [(1, 64, 64), (64, 1, 64), (64, 64, 1), (97, 5, 3), (6, 129, 10)]


@pytest.mark.parametrize("path", MATMUL_PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n", MATMUL_SHAPES)
@pytest.mark.parametrize("orders", ["CFF", "FCC", "CCF", "CFC", "FCF", "CCC", "FFF", "FFC"])
def test_matmul_paths_any_layout(rng, path, m, k, n, dtype, orders):
    """Both paths, every order of A, B, C (the dense layer's: forward CFF, dW FCC, dX FFF)."""
    A = np.asarray(rng.standard_normal((m, k)), dtype, order=orders[0])
    B = np.asarray(rng.standard_normal((k, n)), dtype, order=orders[1])
    C = np.full((m, n), np.nan, dtype, order=orders[2])  # every entry must be written
    MATMUL_PATHS[path](A, B, C)
    assert rel_norm_error(C, ref.f64(A) @ ref.f64(B)) <= rtol(dtype, product=True)


def _cube_sides(limit):
    """(m, k, n) with m·k·n at ``limit`` (or just below) and just above it."""
    side = max(1, round(limit ** (1 / 3)))
    while side ** 3 > limit and side > 1:
        side -= 1
    return [(side, side, side), (side + 1, side, side)]


CROSSOVER_SHAPES = _cube_sides(DOT_FORM_LIMIT) + _cube_sides(OUTER_FORM_LIMIT) + [(31, 33, 32)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n", CROSSOVER_SHAPES)
@pytest.mark.parametrize("form", ["forward", "weights", "inputs"])
def test_matmul_either_side_of_the_crossovers(rng, m, k, n, dtype, form):
    """matmul on the dense layer's three products at and just above each limit in use."""
    W = rng.standard_normal((m, k)).astype(dtype)
    X, D = fmat(rng, (k, n), dtype), fmat(rng, (m, n), dtype)
    if form == "forward":
        A, B, C = W, X, np.full((m, n), np.nan, dtype, order="F")
    elif form == "weights":
        A, B, C = D, X.T, np.full((m, k), np.nan, dtype)
    else:
        A, B, C = W.T, D, np.full((k, n), np.nan, dtype, order="F")
    matmul(A, B, C)
    assert rel_norm_error(C, ref.f64(A) @ ref.f64(B)) <= rtol(dtype, product=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out,inp,batch", DENSE_SHAPES)
@pytest.mark.parametrize("name", ["identity", "relu", "tanh", "softmax"])
def test_dense_forward(rng, out, inp, batch, dtype, name):
    W = rng.standard_normal((out, inp)).astype(dtype)
    b = rng.standard_normal(out).astype(dtype)
    X = fmat(rng, (inp, batch), dtype)
    Y = np.empty((out, batch), dtype, order="F")
    dense.dense_forward(W, b, X, act.ACTIVATIONS[name], Y)
    expected = ref.activation(name, ref.f64(W) @ ref.f64(X) + ref.f64(b)[:, None])
    assert rel_norm_error(Y, expected) <= rtol(dtype, product=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out,inp,batch", DENSE_SHAPES)
@pytest.mark.parametrize("name", ["identity", "relu", "sigmoid"])
def test_backprop_rules(rng, out, inp, batch, dtype, name):
    W = rng.standard_normal((out, inp)).astype(dtype)
    X = fmat(rng, (inp, batch), dtype)
    Z = ref.f64(W) @ ref.f64(X)
    A = ref.activation(name, Z).astype(dtype, order="F")
    dA = fmat(rng, (out, batch), dtype)
    dZ, dW = np.empty_like(dA), np.empty((out, inp), dtype)
    db, dX = np.empty(out, dtype), np.empty((inp, batch), dtype, order="F")
    dense.dense_backward(W, X, A, dA, act.ACTIVATIONS[name], dZ, dW, db, dX)
    a = ref.f64(A)
    delta = ref.f64(dA) * {"identity": 1.0, "relu": (a > 0) * 1.0, "sigmoid": a * (1 - a)}[name]
    tol = rtol(dtype, product=True)
    assert rel_norm_error(dZ, delta) <= tol
    assert rel_norm_error(db, delta.sum(axis=1)) <= tol              # db = row-sum(dY)
    assert rel_norm_error(dW, delta @ ref.f64(X).T) <= tol           # dW = dY · Xᵀ
    assert rel_norm_error(dX, ref.f64(W).T @ delta) <= tol           # dX = Wᵀ · dY
    # each rule on its own
    dW2, dX2 = np.empty_like(dW), np.empty_like(dX)
    dense.backprop_weights(dZ, X, dW2)
    dense.backprop_inputs(W, dZ, dX2)
    np.testing.assert_array_equal(dW2, dW)
    np.testing.assert_array_equal(dX2, dX)


def loss_inputs(rng, name, shape, dtype):
    if name == "mse":
        return fmat(rng, shape, dtype), fmat(rng, shape, dtype)
    P = ref.activation("softmax" if name == "categorical_crossentropy" else "sigmoid",
                       fmat(rng, shape, np.float64, 2.0)).astype(dtype, order="F")
    if name == "categorical_crossentropy":
        T = np.zeros(shape)
        T[rng.integers(0, shape[0], shape[1]), np.arange(shape[1])] = 1
    else:
        T = rng.uniform(0, 1, shape)
    return P, np.asfortranarray(T).astype(dtype, order="F")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (5, 1), (7, 33), (10, 515)])
@pytest.mark.parametrize("name", list(losses.LOSSES))
def test_losses(rng, name, shape, dtype):
    P, T = loss_inputs(rng, name, shape, dtype)
    G = np.empty_like(P)
    value = losses.loss_value_and_grad(losses.LOSSES[name], P, T, G)
    expected, grad = ref.losses(name, P, T)
    assert value == pytest.approx(expected, rel=rtol(dtype, product=True))
    assert rel_norm_error(G, grad) <= rtol(dtype, product=True)


@pytest.mark.parametrize("name", list(losses.LOSSES))
def test_loss_gradients_match_finite_differences(rng, name):
    P, T = loss_inputs(rng, name, (4, 6), np.float64)
    G = np.empty_like(P)
    losses.loss_value_and_grad(losses.LOSSES[name], P, T, G)
    h, scratch = 1e-7, np.empty_like(P)
    for idx in np.ndindex(P.shape):
        up, down = P.copy(order="F"), P.copy(order="F")
        up[idx] += h
        down[idx] -= h
        fd = (losses.loss_value_and_grad(losses.LOSSES[name], up, T, scratch)
              - losses.loss_value_and_grad(losses.LOSSES[name], down, T, scratch)) / (2 * h)
        assert G[idx] == pytest.approx(fd, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (2, 7), (10, 33), (3, 515)])
@pytest.mark.parametrize("fused", ["softmax", "sigmoid"])
def test_fused_losses_from_logits(rng, fused, shape, dtype):
    if fused == "softmax" and shape[0] == 1:
        shape = (2, shape[1])
    Z = fmat(rng, shape, dtype, 3.0)
    name = "categorical_crossentropy" if fused == "softmax" else "binary_crossentropy"
    _, T = loss_inputs(rng, name, shape, dtype)
    P, G = np.empty_like(Z), np.empty_like(Z)
    kernel = (losses.softmax_cross_entropy if fused == "softmax"
              else losses.sigmoid_binary_cross_entropy)
    value = kernel(Z, T, P, G)
    p = ref.activation(fused, Z)
    expected, _ = ref.losses(name, p, T)
    m, n = shape
    assert value == pytest.approx(expected, rel=rtol(dtype, product=True))
    np.testing.assert_allclose(P, p, rtol=rtol(dtype) * 4, atol=1e-7)
    grad = (p - ref.f64(T)) / (n if fused == "softmax" else m * n)
    assert rel_norm_error(G, grad) <= rtol(dtype, product=True)
    Zc = Z.copy(order="F")
    assert kernel(Zc, T, Zc, G) == pytest.approx(value, rel=1e-12)   # P may be Z
    np.testing.assert_allclose(Zc, P, rtol=1e-6 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_losses_are_stable_for_logits_of_1e4(dtype):
    Z = np.asfortranarray([[1e4, -1e4], [-1e4, 1e4], [0.0, -1e4]], dtype=dtype)
    T = np.asfortranarray([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]], dtype=dtype)
    P, G = np.empty_like(Z), np.empty_like(Z)
    value = losses.softmax_cross_entropy(Z, T, P, G)
    assert value == pytest.approx((0 + 2e4) / 2, rel=1e-6)  # sample 2: log-sum-exp 1e4, z_t -1e4
    assert np.isfinite(P).all() and np.isfinite(G).all()
    value = losses.sigmoid_binary_cross_entropy(Z, T, P, G)
    assert np.isfinite(value) and np.isfinite(P).all() and np.isfinite(G).all()
    # softplus(z) - t z: 0 where confident and right, 1e4 where confident and wrong
    assert value == pytest.approx((2e4 + np.log(2)) / 6, rel=1e-6)


def test_count_correct():
    P = np.asfortranarray([[0.1, 0.7, 0.2], [0.8, 0.2, 0.3], [0.1, 0.1, 0.5]])
    T = np.asfortranarray([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert losses.count_correct(losses.CATEGORICAL_CROSSENTROPY, P, T) == 2
    assert losses.count_correct(losses.BINARY_CROSSENTROPY, P, T) == 8  # 0.5 is not > 0.5
    assert losses.count_correct(losses.MSE, P, T) == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_add_penalty_grad(rng, dtype):
    n = 301
    p, g = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    bounds = np.array([0, 100, 130, 301], dtype=np.int64)
    l1, l2 = np.array([0.01, 0.0, 0.0]), np.array([0.1, 0.0, 0.3])
    g0 = g.copy()
    seg = Segments(bounds, l1, l2, np.zeros(3))
    penalty = optimizers.add_penalty_grad(p, g, seg)
    w = ref.f64(p)
    expected = (0.01 * np.abs(w[:100]).sum() + 0.05 * (w[:100] ** 2).sum()
                + 0.15 * (w[130:] ** 2).sum())
    assert penalty == pytest.approx(expected, rel=rtol(dtype, True))
    grad = ref.f64(g0)
    grad[:100] = ref.regularized(grad[:100], w[:100], 0.01, 0.1)
    grad[130:] = ref.regularized(grad[130:], w[130:], 0.0, 0.3)
    np.testing.assert_allclose(g, grad, rtol=rtol(dtype), atol=1e-7)
