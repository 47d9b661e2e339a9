"""The optimizer registry (fastnn.kernels.optimizer_rules) and the classes made from it:
every rule has its class, its arguments checked against their ranges, and trains,
saves and resumes through ``fit`` like any other."""
import inspect
import math

import numpy as np
import pytest

import fastnn
from fastnn.kernels import OPTIMIZERS as CODES, STATE_VECTORS
from fastnn.kernels.optimizer_rules import RULES
from fastnn.optimizers import OPTIMIZERS

RULE_IDS = [rule.name for rule in RULES]


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_every_rule_has_its_class(rule):
    cls = OPTIMIZERS[rule.name]
    assert getattr(fastnn, rule.title) is cls and cls.__name__ == rule.title
    assert cls.code == CODES[rule.name] and STATE_VECTORS[cls.code] == len(rule.state)
    taken = [h for h in rule.hyperparameters if not h.fixed]
    expected = [("lr", rule.lr)] + [(h.name, h.default) for h in taken] + [("decay", 0.0)]
    signature = inspect.signature(cls)
    assert [(p.name, p.default) for p in signature.parameters.values()] == expected
    assert cls.__doc__ == rule.doc and rule.doc
    optimizer = cls()
    assert optimizer.lr == rule.lr
    np.testing.assert_array_equal(optimizer.hyperparameters(),
                                  [float(h.default) for h in rule.hyperparameters])
    assert repr(optimizer).startswith(f"{rule.title}(lr=")
    assert fastnn.optimizers.get_optimizer(rule.name.upper()).__class__ is cls


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_arguments_are_taken_by_position_and_name(rule):
    cls = OPTIMIZERS[rule.name]
    taken = [h for h in rule.hyperparameters if not h.fixed]
    values = [(not h.default) if h.flag else (h.low + h.high) / 2 if math.isfinite(h.high)
              else h.default * 2 + 0.5 for h in taken]
    if rule.check is not None:
        try:
            rule.check(dict(zip((h.name for h in taken), values)))
        except ValueError:
            values = [h.default for h in taken]
    by_position = cls(0.5, *values)
    by_name = cls(lr=0.5, **{h.name: v for h, v in zip(taken, values)})
    for h, v in zip(taken, values):
        assert getattr(by_position, h.name) == getattr(by_name, h.name) == v
    with pytest.raises(TypeError):
        cls(0.5, *values, 0.0, 1.0)          # one argument too many
    with pytest.raises(TypeError, match="unexpected keyword"):
        cls(learning_rate=0.1)


def _outside(h):
    """Values of hyperparameter ``h`` outside its range."""
    bad = [math.nan, math.inf if math.isfinite(h.high) else -math.inf]
    bad.append(h.low if h.low_open else h.low - 0.5)
    if math.isfinite(h.high):
        bad.append(h.high if h.high_open else h.high + 0.5)
    return bad


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_hyperparameters_outside_their_range_are_refused_by_name(rule):
    cls = OPTIMIZERS[rule.name]
    for h in (h for h in rule.hyperparameters if not h.fixed):
        if h.flag:
            for value in (1, 0.0, "yes", None):
                with pytest.raises(TypeError, match=h.name):
                    cls(**{h.name: value})
            continue
        for value in _outside(h):
            with pytest.raises(ValueError, match=h.name):
                cls(**{h.name: value})
        with pytest.raises(TypeError, match=h.name):
            cls(**{h.name: "0.5"})
    with pytest.raises(ValueError, match="lr"):
        cls(lr=0.0)


def test_fixed_hyperparameters_are_no_arguments():
    assert fastnn.Adam().weight_decay == 0.0
    with pytest.raises(TypeError, match="weight_decay"):
        fastnn.Adam(weight_decay=0.1)
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0"):
        fastnn.SGD(nesterov=True)


def _data(n=64):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 5))
    return X, X @ rng.standard_normal(5) + 0.1 * rng.standard_normal(n)


def _model(dtype):
    return fastnn.Sequential([fastnn.Dense(5, 7, activation="tanh", l2=1e-3),
                              fastnn.Dense(7, 1)], loss="mse", dtype=dtype, seed=4)


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_every_optimizer_trains_saves_and_resumes_exactly(rule, tmp_path):
    """fit 3 epochs, save, load, fit 2 == fit 5 in one go, bit for bit (the state vectors,
    the step count and the shuffling generator travel in the file); the loss falls."""
    X, y = _data()
    lr = {"sgd": 0.05, "adagrad": 0.1, "lion": 3e-3}.get(rule.name, 0.01)
    whole = _model("float64")
    hist = whole.fit(X, y, epochs=5, batch_size=8, optimizer=OPTIMIZERS[rule.name](lr),
                     verbose=0)
    assert hist.history["loss"][-1] < 0.7 * hist.history["loss"][0]
    first = _model("float64")
    first.fit(X, y, epochs=3, batch_size=8, optimizer=OPTIMIZERS[rule.name](lr), verbose=0)
    first.save(tmp_path / "m.fnn")
    resumed = fastnn.load(tmp_path / "m.fnn")
    assert type(resumed.optimizer) is OPTIMIZERS[rule.name]
    assert resumed.optimizer._hyper_config() == first.optimizer._hyper_config()
    resumed.fit(X, y, epochs=2, batch_size=8, verbose=0)
    np.testing.assert_array_equal(resumed.params, whole.params)
    np.testing.assert_array_equal(resumed.optimizer.state, whole.optimizer.state)
