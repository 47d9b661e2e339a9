"""The update kernels — every optimizer of the registry, schedules, clipping, weight
decay — against the float64 references of tests/reference.py and hand-computed sequences."""
import math
import zlib

import numpy as np
import pytest

import reference as ref
from fastnn.kernels import _optimizers as opt
from fastnn.kernels import _schedules as schedules
from fastnn.kernels._layout import Segments

DTYPES = [np.float32, np.float64]


@pytest.fixture
def rng(request):
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


def rtol(dtype):
    return 1e-5 if dtype == np.float32 else 1e-12


def segments_of(n):
    """Three tensors: a regularized, decayed W; a bias; a second W (decayed only)."""
    a, b = n // 2, n // 2 + max(1, n // 5) if n > 2 else n
    cuts = sorted({0, min(a, n), min(b, n), n})
    specs = [(0.01, 0.1, 1.0), (0.0, 0.0, 0.0), (0.0, 0.0, 1.0)]
    rows = [(lo, hi, *specs[i]) for i, (lo, hi) in enumerate(zip(cuts, cuts[1:]))]
    seg = Segments(np.array(cuts, np.int64), np.array([r[2] for r in rows]),
                   np.array([r[3] for r in rows]), np.array([r[4] for r in rows]))
    return seg, rows


SCHEDULES = {
    "constant": (("inverse_time", 0.01, 0.0), [schedules.INVERSE_TIME, 0.01, 0.0, 0, 0]),
    "inverse_time": (("inverse_time", 0.01, 0.3), [schedules.INVERSE_TIME, 0.01, 0.3, 0, 0]),
    "step": (("step", 0.02, 2, 0.5), [schedules.STEP, 0.02, 2, 0.5, 0]),
    "exponential": (("exponential", 0.02, 0.7), [schedules.EXPONENTIAL, 0.02, 0.7, 0, 0]),
    "cosine": (("cosine", 0.02, 5, 2, 0.001), [schedules.COSINE, 0.02, 5, 2, 0.001]),
}

OPTIMIZERS = [
    ("sgd", dict(momentum=0.0, nesterov=False), [0.0, 0.0]),
    ("sgd", dict(momentum=0.9, nesterov=False), [0.9, 0.0]),
    ("sgd", dict(momentum=0.8, nesterov=True), [0.8, 1.0]),
    ("adagrad", dict(eps=1e-7), [1e-7]),
    ("rmsprop", dict(rho=0.9, eps=1e-7), [0.9, 1e-7]),
    ("adam", dict(beta1=0.9, beta2=0.999, eps=1e-8), [0.9, 0.999, 1e-8, 0.0]),
    ("adamw", dict(beta1=0.5, beta2=0.9, eps=1e-8, weight_decay=0.1), [0.5, 0.9, 1e-8, 0.1]),
    ("lamb", dict(beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.01), [0.9, 0.999, 1e-6, 0.01]),
    ("lion", dict(beta1=0.9, beta2=0.99, weight_decay=0.0), [0.9, 0.99, 0.0]),
    ("lion", dict(beta1=0.8, beta2=0.9, weight_decay=0.5), [0.8, 0.9, 0.5]),
]
CODES = opt.OPTIMIZERS


def rule(name, hp, schedule, clip_norm=None, clip_value=None):
    table = np.array(schedule + [1.0], dtype=np.float64)
    clip = np.array([np.inf if clip_norm is None else clip_norm,
                     np.inf if clip_value is None else clip_value])
    return opt.make_update(CODES[name], np.array(hp, dtype=np.float64), table, clip)


def run_updates(name, hp_kernel, schedule, p0, grads, seg, steps0=0, **clip):
    p = p0.copy()
    state = np.zeros((opt.STATE_VECTORS[CODES[name]], p.size), p.dtype)
    upd = rule(name, hp_kernel, schedule, **clip)
    for t, g in enumerate(grads, start=steps0):
        opt.optimizer_update(upd, seg, p, g, state, t)
    return p


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 7, 1000, 100_003])
@pytest.mark.parametrize("name,hp,hp_kernel", OPTIMIZERS)
@pytest.mark.parametrize("schedule", ["constant", "inverse_time", "cosine"])
def test_optimizers_against_reference(rng, name, hp, hp_kernel, n, dtype, schedule):
    p0 = rng.standard_normal(n).astype(dtype)
    grads = [rng.standard_normal(n).astype(dtype) for _ in range(4)]
    seg, rows = segments_of(n)
    ref_schedule, kernel_schedule = SCHEDULES[schedule]
    p = run_updates(name, hp_kernel, kernel_schedule, p0, grads, seg, steps0=1)
    expected, _ = ref.optimizer_steps(name, p0, grads, dict(hp, lr=ref_schedule), rows,
                                      steps0=1)
    moved = np.abs(expected - ref.f64(p0)).max()
    np.testing.assert_allclose(p, expected, rtol=rtol(dtype), atol=moved * 10 * rtol(dtype))


@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_schedules_against_their_formulas(schedule):
    ref_schedule, kernel_schedule = SCHEDULES[schedule]
    table = np.array(kernel_schedule + [1.0])
    for t in range(12):
        assert schedules.learning_rate(table, t) == pytest.approx(
            ref.learning_rate(ref_schedule, t), rel=1e-14, abs=1e-18)


def test_schedules_hand_computed_sequences():
    def seq(values, steps=8, scale=1.0):
        table = np.array(values + [scale], dtype=np.float64)
        return [schedules.learning_rate(table, t) for t in range(steps)]
    # StepDecay(0.1, step_size=3, gamma=0.5)
    assert seq([schedules.STEP, 0.1, 3, 0.5, 0]) == pytest.approx(
        [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025])
    # ExponentialDecay(2.0, gamma=0.5)
    assert seq([schedules.EXPONENTIAL, 2.0, 0.5, 0, 0], 4) == pytest.approx([2, 1, 0.5, 0.25])
    # InverseTimeDecay(1.0, decay=1.0): 1, 1/2, 1/3, 1/4
    assert seq([schedules.INVERSE_TIME, 1.0, 1.0, 0, 0], 4) == pytest.approx(
        [1, 1 / 2, 1 / 3, 1 / 4])
    # CosineDecay(1.0, total=10, warmup=2, min_lr=0.1): 0, 0.5 (warmup), 1 at t=2,
    # 0.55 halfway (t=6), 0.1 from t=10 on
    rates = seq([schedules.COSINE, 1.0, 10, 2, 0.1], 14)
    assert rates[:3] == pytest.approx([0.0, 0.5, 1.0])
    assert rates[6] == pytest.approx(0.55)
    assert rates[4] == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2)
    assert rates[10:] == pytest.approx([0.1] * 4)
    # a scale (ReduceLROnPlateau) multiplies any schedule
    assert seq([schedules.STEP, 0.1, 3, 0.5, 0], 4, scale=0.25) == pytest.approx(
        [0.025, 0.025, 0.025, 0.0125])
    # warmup_steps == total_steps: a linear ramp, then min_lr
    assert seq([schedules.COSINE, 1.0, 4, 4, 0.0], 6) == pytest.approx([0, .25, .5, .75, 0, 0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("where", ["below", "at", "above"])
def test_global_norm_clipping(rng, dtype, where):
    n = 513
    p0 = rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    seg, rows = segments_of(n)
    g_reg = ref.f64(g).copy()
    for lo, hi, l1, l2, _ in rows:
        g_reg[lo:hi] = ref.regularized(g_reg[lo:hi], ref.f64(p0)[lo:hi], l1, l2)
    norm = np.linalg.norm(g_reg)
    max_norm = {"below": 2 * norm, "at": norm, "above": norm / 4}[where]
    assert opt.grad_norm(p0, g, seg, np.inf) == pytest.approx(norm, rel=rtol(dtype))
    factor = opt.clip_factor(p0, g, seg, max_norm, np.inf)
    assert factor == pytest.approx(min(1.0, max_norm / (norm + 1e-6)), rel=rtol(dtype))
    if where == "below":
        assert factor == 1.0
    else:     # at the threshold PyTorch's + 1e-6 still scales, by a hair
        assert factor < 1.0
    # through the update: plain SGD moves p by exactly lr · (clipped gradient)
    p = run_updates("sgd", [0, 0], [schedules.INVERSE_TIME, 1.0, 0, 0, 0], p0, [g], seg,
                    clip_norm=max_norm)
    step = ref.f64(p0) - ref.f64(p)
    np.testing.assert_allclose(step, ref.clipped(g_reg, clip_norm=max_norm),
                               rtol=10 * rtol(dtype), atol=1e-6 if dtype == np.float32 else 1e-13)
    assert np.linalg.norm(step) == pytest.approx(norm * min(1.0, max_norm / (norm + 1e-6)),
                                                 rel=10 * rtol(dtype))
    assert np.linalg.norm(step) <= max_norm * (1 + 10 * rtol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_value_clipping_then_norm(rng, dtype):
    n = 300
    p0 = rng.standard_normal(n).astype(dtype)
    g = (rng.standard_normal(n) * 3).astype(dtype)
    seg = Segments(np.array([0, n], np.int64), np.zeros(1), np.zeros(1), np.zeros(1))
    for clip in (dict(clip_value=0.5), dict(clip_value=0.5, clip_norm=2.0), dict(clip_norm=2.0)):
        p = run_updates("sgd", [0, 0], [schedules.INVERSE_TIME, 1.0, 0, 0, 0], p0, [g],
                        seg, **clip)
        expected = ref.clipped(ref.f64(g), **clip)
        np.testing.assert_allclose(ref.f64(p0) - ref.f64(p), expected, rtol=10 * rtol(dtype),
                                   atol=1e-6 if dtype == np.float32 else 1e-13)
        if "clip_value" in clip:
            assert np.abs(ref.f64(p0) - ref.f64(p)).max() <= 0.5 * (1 + 1e-6)


def test_decoupled_weight_decay_spares_biases(rng):
    """With a zero gradient AdamW only decays: W by (1 − lr λ) per update, b untouched."""
    n = 40
    p0 = rng.standard_normal(n)
    seg = Segments(np.array([0, 30, 40], np.int64), np.zeros(2), np.zeros(2),
                   np.array([1.0, 0.0]))
    p = run_updates("adamw", [0.9, 0.999, 1e-8, 0.1], [schedules.INVERSE_TIME, 0.5, 0, 0, 0],
                    p0, [np.zeros(n)] * 3, seg)
    np.testing.assert_allclose(p[:30], p0[:30] * (1 - 0.5 * 0.1) ** 3, rtol=1e-14)
    np.testing.assert_array_equal(p[30:], p0[30:])


def test_lamb_trust_ratio_is_one_for_zero_weights(rng):
    """A tensor of zeros (a bias at initialization) moves by lr · r: trust ratio 1."""
    n = 20
    p0 = np.concatenate([rng.standard_normal(12), np.zeros(8)])
    g = rng.standard_normal(n)
    seg = Segments(np.array([0, 12, 20], np.int64), np.zeros(2), np.zeros(2),
                   np.array([1.0, 0.0]))
    p = run_updates("lamb", [0.9, 0.999, 1e-6, 0.01], [schedules.INVERSE_TIME, 0.1, 0, 0, 0],
                    p0, [g], seg)
    r = g / (np.abs(g) + 1e-6)        # m̂/(√v̂ + eps) after one update: g/(|g| + eps)
    np.testing.assert_allclose(p[12:], -0.1 * r[12:], rtol=1e-12)
    w = p0[:12]
    r_w = r[:12] + 0.01 * w
    np.testing.assert_allclose(p[:12], w - 0.1 * np.linalg.norm(w) / np.linalg.norm(r_w) * r_w,
                               rtol=1e-12)


def test_each_update_kernel_directly(rng):
    """The per-optimizer kernels with explicit arguments (the rate already scheduled)."""
    n = 50
    p0, g = rng.standard_normal(n), rng.standard_normal(n)
    seg = Segments(np.array([0, n], np.int64), np.zeros(1), np.zeros(1), np.ones(1))
    lr = 0.1 / (1 + 0.01 * 3)
    cases = {
        "sgd": lambda p, s: opt.sgd_update(p, g, s[0], lr, 0.9, True, seg, 1.0, np.inf),
        "adagrad": lambda p, s: opt.adagrad_update(p, g, s[0], lr, 1e-7, seg, 1.0, np.inf),
        "rmsprop": lambda p, s: opt.rmsprop_update(p, g, s[0], lr, 0.9, 1e-7, seg, 1.0, np.inf),
        "adamw": lambda p, s: opt.adam_update(p, g, s[0], s[1], 3, lr, 0.9, 0.999, 1e-8, 0.01,
                                              seg, 1.0, np.inf),
        "lamb": lambda p, s: opt.lamb_update(p, g, s[0], s[1], 3, lr, 0.9, 0.999, 1e-6, 0.01,
                                             seg, 1.0, np.inf),
    }
    hps = {"sgd": dict(momentum=0.9, nesterov=True), "adagrad": dict(eps=1e-7),
           "rmsprop": dict(rho=0.9, eps=1e-7),
           "adamw": dict(beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01),
           "lamb": dict(beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.01)}
    for name, run in cases.items():
        p, state = p0.copy(), np.zeros((2, n))
        run(p, state)
        expected, _ = ref.optimizer_steps(name, p0, [g], dict(hps[name], lr=0.1, decay=0.01),
                                          [(0, n, 0.0, 0.0, 1.0)], steps0=3)
        np.testing.assert_allclose(p, expected, rtol=1e-12)   # zero state, update number 4
