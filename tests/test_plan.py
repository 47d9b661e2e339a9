"""kernels._plan: plans as types, and kernels chosen from tables while compiling."""
import pickle
import subprocess
import sys

import numpy as np
import pytest
from numba import njit, typeof
from numba._dispatcher import compute_fingerprint

from fastnn.kernels._jit import kernel
from fastnn.kernels._layout import DENSE, PARALLEL_WEIGHTS, BlockSpec, make_network
from fastnn.kernels._optimizers import ADAM, ADAMW, LAMB, OPTIMIZERS, SGD, make_update
from fastnn.kernels._plan import Plan, by_plan, plan_choices


@kernel
def _add(x, y):
    x[0] += y
    return x[0]


@kernel
def _scale(x, y):
    x[0] *= y
    return x[0]


combine = by_plan("op", {0: _add, 1: _scale})
maybe_add = by_plan("extra", {True: _add, False: None})
factor = by_plan(("op", "extra"), {(0, False): 1.0, (0, True): 2.0, (1, False): 3.0,
                                   (1, True): 4.0})


@kernel(entry=True)
def _run(plan, x, y):
    maybe_add(plan, x, y)
    return combine(plan, x, y) * factor(plan)


def test_plans_are_values_and_types():
    a, b = Plan(op=1, extra=True), Plan(extra=True, op=1)
    assert a == b and hash(a) == hash(b) and repr(a) == "Plan(extra=True, op=1)"
    assert type(a) is type(b) and isinstance(a, Plan)
    assert a != Plan(op=0, extra=True) and a.op == 1 and a.extra is True
    assert typeof(a) == typeof(b) and plan_choices(typeof(a)) == {"extra": True, "op": 1}
    assert typeof(a) != typeof(Plan(op=0, extra=True)) != typeof(Plan(op=0, extra=1))
    assert plan_choices(typeof((True, 1))) is None
    with pytest.raises(AttributeError):
        a.op = 0
    with pytest.raises(TypeError, match="'op' must be a bool or an int"):
        Plan(op=1.5)
    with pytest.raises(ValueError, match="'a__b'"):
        Plan(a__b=1)


def test_numba_fingerprints_each_plan_apart():
    """Numba's fast argument check types a call's arguments by their fingerprint, which
    for a namedtuple holds its class name: each plan's differs (a value Numba cannot
    fingerprint would be typed in Python at every call)."""
    plans = [Plan(op=op, extra=extra) for op in (0, 1, 2) for extra in (False, True)]
    assert len({compute_fingerprint(p) for p in plans}) == len(plans)


def test_plan_types_unpickle_in_a_fresh_process():
    """Numba's cache index pickles signatures: a plan class must load by its name."""
    blob = pickle.dumps(typeof(Plan(rule=3, clip_norm=True)))
    code = ("import pickle, sys; t = pickle.loads(sys.stdin.buffer.read()); "
            "print(sorted(t.instance_class.choices.items()))")
    out = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True,
                         check=True).stdout.decode()
    assert out.strip() == "[('clip_norm', True), ('rule', 3)]"


@pytest.mark.parametrize("op", [0, 1])
@pytest.mark.parametrize("extra", [False, True])
def test_by_plan_picks_the_same_kernel_compiled_and_from_python(op, extra):
    plan = Plan(op=op, extra=extra)
    x0 = 1.0 + np.random.default_rng(op + 2 * extra).random(1)
    y = 0.75
    expected = x0[0] + y if extra else x0[0]
    expected = (expected + y if op == 0 else expected * y) * [[1.0, 2.0], [3.0, 4.0]][op][extra]
    x = x0.copy()
    assert _run(plan, x, y) == pytest.approx(expected, rel=1e-15)
    x = x0.copy()
    assert _run.py_func(plan, x, y) == pytest.approx(expected, rel=1e-15)


def test_one_compile_per_plan():
    x = np.ones(1)
    before = len(_run.signatures)
    for op, extra in ((0, False), (0, False), (1, False), (1, False)):
        _run(Plan(op=op, extra=extra), x, 1.0)
    assert len(_run.signatures) - before <= 2


def test_a_plan_without_a_table_entry_is_an_error():
    with pytest.raises(ValueError, match="no kernel for {'op': 2}"):
        combine(Plan(op=2), np.ones(1), 1.0)
    with pytest.raises(Exception, match="no kernel for {'op': 2}"):
        njit(lambda plan, x: combine(plan, x, 1.0))(Plan(op=2), np.ones(1))


def test_a_network_plan_records_its_kinds():
    def plan(norm=(0, 0), drop=(0.0, 0.0), loss=0, fused=False, sizes=(3, 4, 2)):
        specs = [BlockSpec(DENSE, sizes[l], sizes[l + 1], None, act, norm[l], 0.9, 1e-5,
                           drop[l], 0.0, 0.0) for l, act in enumerate((1, 0))]
        net, _, _ = make_network(specs, loss, fused, 7)
        return net.plan
    plain = dict(norm=False, dropout=False, conv=False, pool=False, loss=0, fused=False,
                 parallel=False, split=False)
    assert plan() == Plan(**plain)
    assert type(plan()) is type(Plan(**plain))
    assert plan(norm=(0, 1)).norm and not plan(norm=(0, 1)).dropout
    assert plan(drop=(0.0, 0.5)).dropout and not plan(drop=(0.0, 0.5)).norm
    assert plan(loss=2, fused=True) == Plan(**{**plain, "loss": 2, "fused": True})
    # the widest layer's weights decide whether the products run across threads
    assert not plan(sizes=(3, PARALLEL_WEIGHTS // 3 - 1, 2)).parallel
    assert plan(sizes=(4, PARALLEL_WEIGHTS // 4, 2)).parallel


def test_an_update_plan_records_its_rule_and_clipping():
    hp, schedule = np.zeros(4), np.array([0.0, 1e-3, 0, 0, 0, 1.0])
    no_clip, clip = np.array([np.inf, np.inf]), np.array([1.0, np.inf])
    assert make_update(SGD, hp[:2], schedule, no_clip, True).plan == Plan(
        rule=SGD, clip_norm=False, parallel=True)
    # a layerwise rule (a trust ratio per tensor) runs on one thread
    assert make_update(LAMB, hp, schedule, clip, True).plan == Plan(rule=LAMB, clip_norm=True,
                                                                    parallel=False)
    adamw = make_update(ADAMW, hp, schedule, np.array([np.inf, 0.5]))
    assert adamw.plan == Plan(rule=ADAM, clip_norm=False, parallel=False)
    assert adamw.code == ADAMW
    with pytest.raises(ValueError, match="sgd takes 2 hyperparameters"):
        make_update(SGD, hp, schedule, no_clip)
    with pytest.raises(ValueError, match="unknown optimizer code"):
        make_update(len(OPTIMIZERS), hp, schedule, no_clip)
