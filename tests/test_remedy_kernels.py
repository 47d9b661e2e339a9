"""The kernels of batch normalization, dropout and the counter-based stream against the
float64 references of tests/reference.py, on random shapes (1, odd, larger than a
vector or a cache line of rows), float32 and float64."""
import zlib

import numpy as np
import pytest

import reference as ref
from fastnn.kernels import _activations as act
from fastnn.kernels import _batchnorm as bn
from fastnn.kernels import _dropout as dropout
from fastnn.kernels import _random as rnd

DTYPES = [np.float32, np.float64]
SHAPES = [(1, 2), (5, 3), (33, 17), (257, 129)]     # (features, batch): batch >= 2 for BN
ELEMENTWISE = ["identity", "relu", "sigmoid", "tanh", "softplus"]


@pytest.fixture
def rng(request):
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


def rtol(dtype):
    return 1e-5 if dtype == np.float32 else 1e-12


def fmat(rng, shape, dtype, scale=1.0, shift=0.0):
    return np.asfortranarray(rng.standard_normal(shape) * scale + shift).astype(dtype, order="F")


def rel_error(out, expected):
    out, expected = ref.f64(out), ref.f64(expected)
    return np.linalg.norm(out - expected) / max(np.linalg.norm(expected), 1e-300)


# ----------------------------------------------------------------- the stream
@pytest.mark.parametrize("key,step,site,rate", [(0, 0, 0, 0.5), (12345, 7, 1, 0.2),
                                                (2 ** 64 - 1, 10 ** 9, 3, 0.9),
                                                (99, 2 ** 40, 0, 0.01)])
def test_keep_mask_is_splitmix64_bit_for_bit(key, step, site, rate):
    out = np.empty(300, np.int8)
    rnd.keep_mask(np.uint64(key), step, site, rate, out)
    np.testing.assert_array_equal(out.astype(bool),
                                  ref.splitmix64_keep(key, step, site, rate, 300))


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 0.75])
def test_keep_fraction_and_independence(rate):
    n = 200_000
    masks = []
    for step, site in ((0, 1), (1, 1), (0, 2)):
        out = np.empty(n, np.int8)
        rnd.keep_mask(np.uint64(42), step, site, rate, out)
        masks.append(out.astype(np.float64))
    sigma = np.sqrt(rate * (1 - rate) / n)
    for m in masks:
        assert abs(m.mean() - (1 - rate)) <= 5 * sigma + 1e-12
    if 0 < rate:   # other steps and sites draw other masks, uncorrelated
        for a, b in ((0, 1), (0, 2), (1, 2)):
            assert abs(np.corrcoef(masks[a], masks[b])[0, 1]) < 5 / np.sqrt(n)


# --------------------------------------------------------------------- dropout
def mask_of(shape, start_args, rate):
    m = ref.splitmix64_keep(*start_args, rate, shape[0] * shape[1])
    return m.reshape(shape[1], shape[0]).T          # element e = j·rows + i


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES + [(1, 1), (64, 64)])
@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_dropout_forward_and_backward(rng, shape, dtype, rate):
    A = fmat(rng, shape, dtype)
    start = rnd.stream(np.uint64(7), 3, 2)
    m = mask_of(shape, (7, 3, 2), rate)
    out = A.copy(order="F")
    dropout.dropout_forward(out, rate, start)
    np.testing.assert_allclose(out, ref.f64(A) * m / (1 - rate), rtol=rtol(dtype))
    D = fmat(rng, shape, dtype)
    dD = D.copy(order="F")
    dropout.dropout_backward(dD, rate, start)
    np.testing.assert_allclose(dD, ref.f64(D) * m / (1 - rate), rtol=rtol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_dropout_activation_backward(rng, name, shape, dtype):
    """From the stored dropped output ã, D <- D ⊙ m/(1 − p) ⊙ f'(z)."""
    rate = 0.3
    Z = fmat(rng, shape, np.float64, 2.0)
    if name == "relu":
        Z[0, 0] = 0.0                                    # a kept zero: f' = 0
    A = ref.activation(name, Z).astype(dtype, order="F")
    start = rnd.stream(np.uint64(11), 5, 1)
    dropout.dropout_forward(A, rate, start)              # the network stores ã
    D = fmat(rng, shape, dtype)
    out = D.copy(order="F")
    dropout.dropout_activation_backward(act.ACTIVATIONS[name], A, out, rate, start)
    m = mask_of(shape, (11, 5, 1), rate)
    expected = ref.f64(D) * m / (1 - rate) * ref.derivative(name, Z)
    assert rel_error(out, expected) <= 4 * rtol(dtype)
    assert (ref.f64(out)[~m] == 0).all()


# ------------------------------------------------------------ batch normalization
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("shift", [0.0, 1e4])
def test_batch_moments(rng, shape, dtype, shift):
    """Mean and biased variance, accurate also far from zero (shifted accumulation)."""
    Z = fmat(rng, shape, dtype, 1.0, shift)
    mean, var = np.empty(shape[0]), np.empty(shape[0])
    bn.batch_moments(Z, mean, var)
    z = ref.f64(Z)
    np.testing.assert_allclose(mean, z.mean(axis=1), rtol=1e-12, atol=1e-12 * (1 + shift))
    np.testing.assert_allclose(var, z.var(axis=1), rtol=1e-9, atol=1e-12)


def bn_inputs(rng, shape, dtype):
    Z = fmat(rng, shape, dtype, 2.0, 0.5)
    gamma = (rng.standard_normal(shape[0]) + 1).astype(dtype)
    beta = rng.standard_normal(shape[0]).astype(dtype)
    return Z, gamma, beta


def bn_forward(Z, gamma, beta, eps, name):
    """The training pass on a copy of Z: (Y, Ẑ, μ, 1/σ, acc)."""
    Y = Z.copy(order="F")
    Zhat = np.empty_like(Z)
    mean, istd = np.empty(Z.shape[0], Z.dtype), np.empty(Z.shape[0], Z.dtype)
    acc = np.empty(2 * Z.shape[0])
    bn.batchnorm_forward(Y, gamma, beta, eps, act.ACTIVATIONS[name], Zhat, mean, istd, acc)
    return Y, Zhat, mean, istd, acc


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_batchnorm_forward(rng, name, shape, dtype):
    Z, gamma, beta = bn_inputs(rng, shape, dtype)
    eps = 1e-5
    Y, Zhat, mean, istd, acc = bn_forward(Z, gamma, beta, eps, name)
    y, zhat, mu, var = ref.batchnorm_train(Z, gamma, beta, eps)
    assert rel_error(Zhat, zhat) <= 4 * rtol(dtype)
    assert rel_error(Y, ref.activation(name, y)) <= 4 * rtol(dtype)
    np.testing.assert_allclose(mean, mu, rtol=rtol(dtype), atol=rtol(dtype))
    np.testing.assert_allclose(istd, 1 / np.sqrt(var + eps), rtol=rtol(dtype))
    np.testing.assert_allclose(acc[:shape[0]], mu, rtol=1e-6)
    np.testing.assert_allclose(acc[shape[0]:], var, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [2, 7, 128])
def test_update_running(rng, n, dtype):
    m = 9
    rm, rv = rng.standard_normal(m).astype(dtype), rng.uniform(0.5, 2, m).astype(dtype)
    mean, var = rng.standard_normal(m), rng.uniform(0.5, 2, m)
    new_rm, new_rv = rm.copy(), rv.copy()
    bn.update_running(new_rm, new_rv, mean, var, 0.1, n)
    np.testing.assert_allclose(new_rm, 0.9 * ref.f64(rm) + 0.1 * mean, rtol=rtol(dtype))
    np.testing.assert_allclose(new_rv, 0.9 * ref.f64(rv) + 0.1 * var * n / (n - 1),
                               rtol=rtol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_update_running_with_one_sample_keeps_the_variance(rng, dtype):
    """A minibatch of one sample (an epoch's last, say) has no variance: n/(n − 1) would
    make the running variance NaN; it stays as it is, the mean moves."""
    m = 5
    rm, rv = rng.standard_normal(m).astype(dtype), rng.uniform(0.5, 2, m).astype(dtype)
    mean = rng.standard_normal(m)
    new_rm, new_rv = rm.copy(), rv.copy()
    bn.update_running(new_rm, new_rv, mean, np.zeros(m), 0.1, 1)
    np.testing.assert_array_equal(new_rv, rv)
    np.testing.assert_allclose(new_rm, 0.9 * ref.f64(rm) + 0.1 * mean, rtol=rtol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES + [(4, 1)])
@pytest.mark.parametrize("name", ["identity", "relu", "tanh"])
def test_batchnorm_inference(rng, name, shape, dtype):
    Z, gamma, beta = bn_inputs(rng, shape, dtype)
    rm = rng.standard_normal(shape[0]).astype(dtype)
    rv = rng.uniform(0.5, 2, shape[0]).astype(dtype)
    Y = Z.copy(order="F")
    scale, shift = np.empty(shape[0], dtype), np.empty(shape[0], dtype)
    bn.batchnorm_inference(Y, gamma, beta, rm, rv, 1e-5, act.ACTIVATIONS[name], scale, shift)
    y = (ref.f64(gamma)[:, None] * (ref.f64(Z) - ref.f64(rm)[:, None])
         / np.sqrt(ref.f64(rv)[:, None] + 1e-5) + ref.f64(beta)[:, None])
    assert rel_error(Y, ref.activation(name, y)) <= 4 * rtol(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_batchnorm_backward_against_explicit_jacobian(rng, shape, dtype):
    Z, gamma, beta = bn_inputs(rng, shape, dtype)
    eps = 1e-5
    _, Zhat, _, istd, acc = bn_forward(Z, gamma, beta, eps, "identity")
    dY = fmat(rng, shape, dtype)
    D = dY.copy(order="F")
    dgamma, dbeta = np.empty(shape[0], dtype), np.empty(shape[0], dtype)
    bn.batchnorm_backward(D, Zhat, gamma, istd, dgamma, dbeta, acc)
    dZ, dg, db = ref.batchnorm_backward(dY, Z, gamma, eps)
    # dZ = γ/σ (dy − mean(dy) − ẑ mean(dy ẑ)) is a difference of nearly equal terms (for a
    # batch of 2 it is almost 0): measure the error against the size of the terms
    terms = np.linalg.norm(ref.f64(gamma * istd)[:, None] * ref.f64(dY))
    assert np.linalg.norm(ref.f64(D) - dZ) <= 4 * rtol(dtype) * max(terms, 1e-300)
    assert rel_error(dgamma, dg) <= 4 * rtol(dtype)
    assert rel_error(dbeta, db) <= 4 * rtol(dtype)
