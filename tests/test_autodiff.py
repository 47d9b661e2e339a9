"""Reverse-mode differentiation: worked examples of a neural-networks course, and the compiled
backprop of a network against the scalar graph."""
import math

import numpy as np
import pytest

import fastnn
from fastnn import autodiff as ad
from fastnn.kernels._layout import B_OFF, W_OFF


def test_notes_example_ln_x1_plus_x1x2_minus_sin_x2():
    x1, x2 = ad.Var(2.0), ad.Var(5.0)
    y = ad.log(x1) + x1 * x2 - ad.sin(x2)
    y.backward()
    assert y.value == pytest.approx(11.652, abs=5e-4)
    assert x1.grad == pytest.approx(5.5)                         # 1/x1 + x2
    assert x2.grad == pytest.approx(1.716, abs=5e-4)             # x1 - cos x2


@pytest.mark.parametrize("x0", [-1.3, 0.4, 2.0])
def test_notes_example_sqrt_x2_plus_exp_x2(x0):
    x = ad.Var(x0)
    a = x * x
    b = ad.exp(a)
    f = ad.sqrt(a + b)
    f.backward()
    assert x.grad == pytest.approx(x0 * (1 + math.exp(x0 ** 2)) / f.value, rel=1e-12)


def test_compiled_backprop_equals_reverse_mode_graph():
    rng = np.random.default_rng(4)
    model = fastnn.Sequential([fastnn.Dense(3, 4, activation="tanh"),
                               fastnn.Dense(4, 2, activation="relu"), fastnn.Dense(2, 2)],
                              dtype="float64", seed=1)
    X, Y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    model.loss_and_grad(X, Y)

    params = [ad.Var(p) for p in model.params]
    acts = {"tanh": ad.tanh, "relu": ad.relu, "identity": lambda v: v}
    loss = 0.0
    for x, y in zip(X, Y):
        a = [ad.Var(v) for v in x]
        for layer, w_off, b_off in zip(model.layers, model.net.table[:, W_OFF],
                                           model.net.table[:, B_OFF]):
            W = lambda i, k: params[w_off + i * layer.n_in + k]  # noqa: E731
            a = [acts[layer.activation](sum((W(i, k) * a[k] for k in range(layer.n_in)),
                                            params[b_off + i])) for i in range(layer.n_out)]
        loss = loss + sum((ai - yi) ** 2 for ai, yi in zip(a, y))
    loss = loss / Y.size
    loss.backward()
    np.testing.assert_allclose(model.grads, [p.grad for p in params], rtol=1e-10, atol=1e-12)
