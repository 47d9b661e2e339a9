"""The kernel library in a loop of one's own (scripts/custom_loop.py): with fastnn's MSE
kernel in place of the user's loss it trains bitwise as ``model.fit``; the public
surface is what docs/kernels.md lists; ``check_layout`` names what is wrong."""
import os

import numpy as np
import pytest

import fastnn
from fastnn import kernels as K

@pytest.fixture(scope="module")
def custom_loop(script):
    return script("custom_loop")


def _model(seed, dtype, norm, drop):
    rng = np.random.default_rng(seed)
    widths = [int(rng.choice([1, 4, 13]))] + [int(rng.choice([1, 6, 33]))
                                             for _ in range(int(rng.integers(1, 3)))]
    layers = []
    for a, b in zip(widths, widths[1:]):
        if drop:
            layers.append(fastnn.Dropout(0.25))
        layers += [fastnn.Dense(a, b), fastnn.BatchNorm(b), fastnn.Activation("tanh")] if norm \
            else [fastnn.Dense(a, b, "relu", l2=1e-3)]
    layers.append(fastnn.Dense(widths[-1], int(rng.choice([1, 3])), None))
    return fastnn.Sequential(layers, loss="mse", dtype=dtype, seed=3)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("norm, drop", [(False, False), (True, False), (False, True),
                                        (True, True)])
def test_the_same_loop_with_fastnns_mse_is_bitwise_fit(custom_loop, dtype, norm, drop):
    seed = int(norm) * 2 + int(drop)
    a, b = _model(seed, dtype, norm, drop), _model(seed, dtype, norm, drop)
    rng = np.random.default_rng(seed + 10)
    np.testing.assert_array_equal(a.params, b.params)
    batch = int(rng.choice([7, 16, 32]))
    n = int(rng.integers(40, 140))
    n += n % batch == 1     # BatchNorm needs no minibatch of one sample
    X = rng.standard_normal((n, a.n_inputs)).astype(dtype)
    y = rng.standard_normal((n, a.n_outputs)).astype(dtype)
    opt_a, opt_b = fastnn.Adam(lr=3e-3), fastnn.Adam(lr=3e-3)
    a.fit(X, y, epochs=3, batch_size=batch, optimizer=opt_a, seed=11, verbose=0)
    custom_loop.train(b, X, y, epochs=3, batch_size=batch, optimizer=opt_b, loss=K.mse,
                      seed=11, log=None)
    assert opt_a.steps == opt_b.steps == 3 * -(-n // batch)
    np.testing.assert_array_equal(b.params, a.params)
    np.testing.assert_array_equal(b.stats, a.stats)
    np.testing.assert_array_equal(opt_b.state, opt_a.state)
    a.fit(X, y, epochs=1, batch_size=batch, seed=12, verbose=0)   # fit carries on
    b.fit(X, y, epochs=1, batch_size=batch, optimizer=opt_b, seed=12, verbose=0)
    np.testing.assert_array_equal(b.params, a.params)


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (3, 5), (2, 64)])
def test_the_example_huber_loss_against_numpy(custom_loop, shape):
    rng = np.random.default_rng(shape[1])
    Y = rng.standard_normal(shape) * 2
    T = rng.standard_normal(shape)
    G = np.empty_like(Y)
    value = custom_loop.huber(Y, T, G)
    d = Y - T
    delta = custom_loop.DELTA
    expected = np.where(np.abs(d) <= delta, 0.5 * d * d, delta * (np.abs(d) - 0.5 * delta))
    assert value == pytest.approx(expected.mean(), rel=1e-12)
    np.testing.assert_allclose(G, np.clip(d, -delta, delta) / d.size, rtol=1e-12)


def test_the_public_surface():
    assert len(K.__all__) == len(set(K.__all__))
    for name in K.__all__:
        item = getattr(K, name)
        assert not name.startswith("_")
        if callable(item) and not isinstance(item, type):
            assert (getattr(item, "__doc__", None) or getattr(item, "py_func", item).__doc__), name
    page = open(os.path.join(os.path.dirname(__file__), os.pardir, "docs", "kernels.md")).read()
    for name in K.__all__:
        assert f"`{name}`" in page, f"{name} is public but not in docs/kernels.md's list"


# ------------------------------------------------------------- check_layout
def _checked(**changes):
    model = fastnn.Sequential([fastnn.Dense(4, 6), fastnn.BatchNorm(6),
                               fastnn.Activation("relu"), fastnn.Dense(6, 2)], loss="mse", seed=0)
    layout = model.layout
    optimizer = fastnn.Adam()
    args = dict(net=layout.net, buf=layout.buffers(8, optimizer), batch_size=8,
                X=np.zeros((10, 4), np.float32), T=np.zeros((10, 2), np.float32),
                perm=np.arange(10), upd=layout.update(optimizer))
    for key, change in changes.items():
        args[key] = change(args)
    K.check_layout(args.pop("net"), args.pop("buf"), **args)


def test_check_layout_accepts_what_a_loop_needs():
    _checked()


@pytest.mark.parametrize("change, error, match", [
    ({"net": lambda a: "net"}, TypeError, "net must be"),
    ({"buf": lambda a: a["buf"]._replace(params=a["buf"].params[:-1])}, ValueError,
     "buf.params has length"),
    ({"buf": lambda a: a["buf"]._replace(grads=a["buf"].grads.astype(np.float64))}, TypeError,
     "buf.grads must be float32"),
    ({"buf": lambda a: a["buf"]._replace(ws=a["buf"].ws[:10])}, ValueError, "buf.ws"),
    ({"batch_size": lambda a: 9}, ValueError, "buf.ws has length"),
    ({"batch_size": lambda a: 0}, ValueError, "batch_size"),
    ({"buf": lambda a: a["buf"]._replace(stats=a["buf"].stats[:3])}, ValueError, "buf.stats"),
    ({"buf": lambda a: a["buf"]._replace(state=a["buf"].state[:1])}, ValueError,
     "this optimizer needs"),
    ({"X": lambda a: np.zeros((10, 5), np.float32)}, ValueError, r"X must be .*\(n, 4\)"),
    ({"X": lambda a: np.zeros((4, 10), np.float32).T}, ValueError, "not C-contiguous"),
    ({"X": lambda a: np.zeros((10, 4))}, TypeError, "X must be float32"),
    ({"T": lambda a: np.zeros((9, 2), np.float32)}, ValueError, "T has 9 rows"),
    ({"perm": lambda a: np.arange(10).astype(np.int32)}, TypeError, "perm must be"),
    ({"perm": lambda a: np.array([0, 10])}, ValueError, r"outside \[0, 10\)"),
    ({"perm": lambda a: np.array([-1, 3])}, ValueError, "outside"),
])
def test_check_layout_names_what_is_wrong(change, error, match):
    with pytest.raises(error, match=match):
        _checked(**change)
