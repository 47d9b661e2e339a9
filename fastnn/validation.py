"""Input checks: every error names the argument and is raised before any kernel runs
(data here, and the scalar checks every constructor and ``fit`` use).

Numba kernels do not bounds-check, so a label outside [0, n_classes) or a wrong
shape would corrupt memory instead of raising; everything is checked here.
"""
import math
import numbers

import numpy as np

DTYPES = {"float32": np.float32, "float64": np.float64}


def check_dtype(dtype):
    """np.float32 or np.float64 from a name or a dtype-like."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from None
    if resolved.name not in DTYPES:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {resolved.name!r}")
    return DTYPES[resolved.name]


def _numeric_array(a, name):
    if not isinstance(a, np.ndarray):
        try:
            a = np.asarray(a)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{name} must be a numeric array: {exc}") from None
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    return a


#: elements from which the scan runs on the pool's threads. Below, one thread scans in
#: under 2 ms, less than a parallel region waits for a thread that a busy neighbour
#: process keeps off a core (measured: a fit of bike's 0.9 M values beside a spinning
#: process took 30 ms longer with the scan on two threads), and a serial model's first
#: fit compiles no parallel region for it
PARALLEL_SCAN = 1 << 22
#: rows per chunk when a non-contiguous array is scanned with NumPy
_ROWS_PER_CHUNK = 4096


def _finite(a, name):
    """``a``, after checking that it holds no NaN or infinity: a compiled scan of a
    contiguous float array (across threads from PARALLEL_SCAN elements), without
    temporaries (integers are always finite)."""
    if a.dtype.kind != "f":
        return a
    if a.dtype in (np.float32, np.float64) and (a.flags.c_contiguous or a.flags.f_contiguous):
        from fastnn.kernels.contract import count_nonfinite, scan_blocks, total_nonfinite
        from fastnn.parallel_regions import parallel_regions_in_turn

        flat = a.ravel(order="K")   # a view: a is contiguous
        if a.size < PARALLEL_SCAN:
            bad = total_nonfinite(flat)
        else:
            counts = np.zeros(scan_blocks(a.size), dtype=np.int64)   # 1/8192 of a float32 a
            with parallel_regions_in_turn():
                count_nonfinite(flat, counts)
            bad = counts.sum()
    else:   # other floats or strided: NumPy, a bounded chunk of rows at a time
        rows = a.reshape(a.shape[0], -1) if a.ndim else a.reshape(1, 1)
        bad = sum(int(np.count_nonzero(~np.isfinite(rows[i:i + _ROWS_PER_CHUNK])))
                  for i in range(0, rows.shape[0], _ROWS_PER_CHUNK))
    if bad:
        raise ValueError(f"{name} contains NaN or infinity")
    return a


def check_features(X, shape, dtype, name="X"):
    """X as a C-contiguous (n_samples, n_features) array of ``dtype``. ``shape`` is one
    sample's (an int: its features); for a shape of several dimensions (a convolution's
    input) X may also be (n_samples, *shape), read in C order."""
    X = _numeric_array(X, name)
    shape = (shape,) if isinstance(shape, numbers.Integral) else tuple(shape)
    n_features = math.prod(shape)
    if len(shape) > 1 and X.ndim == len(shape) + 1 and X.shape[1:] == shape:
        X = X.reshape(X.shape[0], n_features)
    if X.ndim != 2:
        wanted = "" if len(shape) == 1 else f" or (n_samples, {', '.join(map(str, shape))})"
        raise ValueError(f"{name} must be 2-D (n_samples, n_features){wanted}, got shape "
                         f"{X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples)")
    if X.shape[1] != n_features:
        per = "" if len(shape) == 1 else f" (one sample of shape {shape})"
        raise ValueError(f"{name} has {X.shape[1]} features per sample; the model expects "
                         f"{n_features}{per}")
    with np.errstate(over="ignore"):
        converted_X = np.ascontiguousarray(X, dtype=dtype)
    try:
        return _finite(converted_X, name)
    except ValueError:
        _refuse_beyond_range(X, converted_X, name)
        raise


def check_sample_weight(sample_weight, n, name="sample_weight"):
    """None, or ``sample_weight`` as a float64 (n,) array — finite, >= 0, not all 0 — or a
    ValueError/TypeError naming ``name``. Weights all alike (a scalar, or ones) are no
    weights: the weighted mean is then the plain mean, and None gives the unweighted
    kernels' bits (the weighted ones may round the loss's sum differently)."""
    if sample_weight is None:
        return None
    w = _numeric_array(sample_weight, name)
    if w.ndim == 0:
        w = np.full(n, w, dtype=np.float64)
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"{name} must hold one weight per sample, shape ({n},); got shape "
                         f"{w.shape}")
    w = np.ascontiguousarray(w, dtype=np.float64)
    if not np.isfinite(w).all():
        raise ValueError(f"{name} holds NaN or infinite values (first at index "
                         f"{int(np.flatnonzero(~np.isfinite(w))[0])})")
    if (w < 0).any():
        raise ValueError(f"{name} must be >= 0; index {int(np.flatnonzero(w < 0)[0])} is "
                         f"{w[w < 0][0]!r}")
    if not w.sum() > 0:
        raise ValueError(f"{name} sums to zero: at least one sample needs a positive weight")
    return None if (w == w[0]).all() else w


def converted(a, dtype, name):
    """``a`` as a C-contiguous array of ``dtype``. Only narrowing floats (float64 to
    float32) can make a finite value infinite, so only then is the result scanned: a
    value beyond the dtype's range is a ValueError that says so."""
    with np.errstate(over="ignore"):
        result = np.ascontiguousarray(a, dtype=dtype)
    if _narrowed(a, result):
        try:
            _finite(result, name)
        except ValueError:
            _refuse_beyond_range(a, result, name)
            raise
    return result


def _narrowed(a, result):
    """Whether ``result`` is ``a``'s floats converted to a narrower float type."""
    return result is not a and a.dtype.kind == "f" and result.dtype.itemsize < a.dtype.itemsize


def _refuse_beyond_range(a, result, name):
    """Raise the ValueError of finite values of ``a`` that ``result``'s narrower float type
    made infinite (nothing when ``a`` itself is not finite)."""
    if _narrowed(a, result) and np.isfinite(a).all():
        finfo = np.finfo(result.dtype)
        raise ValueError(f"{name} has values beyond the range of {finfo.dtype.name} (largest "
                         f"{finfo.max:.3g}); scale them, or use dtype='float64'") from None


#: loss -> the output activations it needs: probabilities for the cross-entropies, the
#: positive means e^z for the Poisson loss
_OUTPUTS = {"binary_crossentropy": ("softmax", "sigmoid"),
            "categorical_crossentropy": ("softmax", "sigmoid"), "poisson": ("exp",)}


def check_loss(loss, output_activation, losses):
    """``loss`` (a name in ``losses``), with the output activation it needs."""
    if not isinstance(loss, str):
        raise TypeError(f"loss must be a string, got {type(loss).__name__}")
    if loss not in losses:
        raise ValueError(f"unknown loss {loss!r}; choose from {sorted(losses)}")
    needed = _OUTPUTS.get(loss, ())
    if needed and output_activation not in needed:
        what = "positive means" if loss == "poisson" else "probabilities"
        raise ValueError(f"loss {loss!r} needs {what}: give the last layer activation "
                         f"{' or '.join(map(repr, needed))}, not {output_activation!r}")
    return loss


def check_targets(y, n_samples, n_outputs, loss, dtype, name="y"):
    """Targets as a C-contiguous (n_samples, n_outputs) array of ``dtype``.

    mse: values, (n,) when there is one output or (n, n_outputs).
    categorical_crossentropy: integer class ids (n,) in [0, n_outputs), or
        (n, n_outputs) non-negative rows summing to 1 (one-hot or soft labels).
    binary_crossentropy: values in [0, 1], (n,) for one output or (n, n_outputs).
    poisson: values >= 0 (counts or rates), shaped as for mse.
    """
    y = _numeric_array(y, name)
    if y.ndim == 0 or y.ndim > 2:
        raise ValueError(f"{name} must be 1-D or 2-D, got shape {y.shape}")
    if y.shape[0] != n_samples:
        raise ValueError(f"{name} has {y.shape[0]} samples but X has {n_samples}")
    _finite(y, name)
    if loss == "categorical_crossentropy" and y.ndim == 1:
        labels = y
        if labels.dtype.kind == "f" and not np.array_equal(labels, np.round(labels)):
            raise ValueError(f"{name} holds class ids, which must be integers")
        if labels.min() < 0 or labels.max() >= n_outputs:
            raise ValueError(f"{name} holds class ids outside [0, {n_outputs}): "
                             f"min {labels.min()}, max {labels.max()}")
        T = np.zeros((n_samples, n_outputs), dtype=dtype)
        T[np.arange(n_samples), labels.astype(np.int64)] = 1
        return T
    if y.ndim == 1:
        if n_outputs != 1:
            raise ValueError(f"{name} is 1-D but the model has {n_outputs} outputs; pass "
                             f"shape (n_samples, {n_outputs})")
        y = y.reshape(-1, 1)
    if y.shape[1] != n_outputs:
        raise ValueError(f"{name} has {y.shape[1]} columns; the model has {n_outputs} outputs")
    T = converted(y, dtype, name)
    if loss == "poisson" and T.min() < 0:
        raise ValueError(f"{name} holds negative values ({T.min()}), which a Poisson loss "
                         "does not allow")
    if loss not in ("mse", "poisson") and (T.min() < 0 or T.max() > 1):
        raise ValueError(f"{name} must lie in [0, 1] for {loss}")
    if loss == "categorical_crossentropy":
        sums = T.sum(axis=1, dtype=np.float64)
        if not np.allclose(sums, 1.0, atol=1e-3):
            raise ValueError(f"{name} rows must sum to 1 (one-hot or probabilities)")
    return _finite(T, name)


def check_positive_int(value, argument):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{argument} must be an integer, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{argument} must be positive, got {value}")
    return int(value)


def check_real(value, argument):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{argument} must be a real number, got {type(value).__name__}")
    return float(value)


def check_in_range(value, argument, low, high, *, low_open=False, high_open=False):
    """A real ``value`` in the interval from low to high (open at the ends said)."""
    value = check_real(value, argument)
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (math.isfinite(value) and above and below):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{argument} must lie in {interval}, got {value}")
    return value


def check_nonnegative_float(value, argument):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{argument} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not value >= 0.0 or value == float("inf"):
        raise ValueError(f"{argument} must be finite and >= 0, got {value}")
    return value
