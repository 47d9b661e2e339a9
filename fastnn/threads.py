"""The one knob for the threads fastnn uses, the one pool they come from, and the choice
of how many of them run each compiled chunk.

A Numba parallel region started right after a threaded BLAS call waits on the BLAS
pool's spinning threads (8 ms instead of 0.5 ms per step, docs/design.md). So the two
pools never run together: a network with a parallel plan (``net.plan.parallel``: its
widest layer has PARALLEL_WEIGHTS weights, or its largest product
PARALLEL_PRODUCT multiply-adds at the batch size) splits its products across Numba's
threads, one block per thread, each block one single-threaded BLAS call
(kernels/_matmul.py: matmul_parallel), and ``one_pool`` holds BLAS at one thread while
its kernels run, restoring it after. A serial plan's step is held at one BLAS thread too,
unless its largest product is big enough for BLAS's own threads to pay
(BLAS_THREADS_WORK). A split plan (``net.plan.split``: a smaller network trained on large
minibatches, kernels/_split.py) runs each part of a minibatch on a Numba thread, its
products single-threaded BLAS too. ``set_num_threads`` sets both pools.

Where other work shares the cores (a busy neighbour process, joblib's workers, MPI ranks
on one node), a parallel step would wait for a thread the scheduler keeps off its core;
``ThreadChooser`` runs each chunk on the pool or on one thread, whichever measures
faster, without changing a bit of the result.
"""
import contextlib
import ctypes
import itertools
import threading

import numba
from threadpoolctl import ThreadpoolController, threadpool_info, threadpool_limits

from fastnn.kernels.contract import largest_work
from fastnn.parallel_regions import parallel_regions_in_turn
from fastnn.validation import check_positive_int

_limits = None


def _load_blas():
    """Load the BLAS that Numba's np.dot calls (SciPy's), so that its pool can be set
    before the first kernel runs."""
    import scipy.linalg.cython_blas  # noqa: F401


_blas_pools = None


def _blas_controllers():
    """threadpoolctl's controllers of the BLAS libraries loaded (found once)."""
    global _blas_pools
    if _blas_pools is None:
        _load_blas()
        _blas_pools = ThreadpoolController().select(user_api="blas").lib_controllers
    return _blas_pools


#: m·k·n up to which OpenBLAS runs a product on one thread anyway (its SMP threshold,
#: interface/gemm.c): nothing to hold
BLAS_SINGLE_WORK = 1 << 18
#: m·k·n of a serial plan's largest product from which BLAS's own threads pay. Measured
#: (2 cores, fresh process per case, ms per step, BLAS threads vs one): 56-64-64-1 at
#: batch 200 (0.82 M) 0.21 vs 0.11, at 1024 (4.2 M) 0.76 vs 0.63; 64-100-10 at 200 0.25 vs
#: 0.15; 100-128-128-10 at 200 (3.3 M) 0.48 vs 0.47, at 1024 (16.8 M) 1.85 vs 2.35.
BLAS_THREADS_WORK = 1 << 23


def largest_product(net, batch_size):
    """m·k·n of the largest matrix product in a step of ``batch_size`` samples: the
    largest multiply-adds per sample of a layer (for a dense layer, its weights) times the
    batch."""
    return batch_size * largest_work(net)


@contextlib.contextmanager
def one_pool(net, batch_size):
    """While the kernels of ``net`` (a kernels.Network) run on batches of ``batch_size``
    samples: BLAS held at one thread, restored on exit — for a parallel or split plan
    always (its products, or its minibatches' parts, are spread across Numba's threads);
    for a serial plan unless its largest product is at most BLAS_SINGLE_WORK (one thread
    anyway) or from BLAS_THREADS_WORK on (BLAS's threads pay). Wrap a custom loop's
    compiled call in it too. Safe from any Python thread, several at once: the hold is
    the process's (see ``_BlasHold``); under Numba's workqueue threading layer, which
    aborts the process when two threads enter parallel regions at once, the parallel and
    split plans of concurrent calls also take turns."""
    parallel = net.plan.parallel or net.plan.split
    if not parallel:
        work = largest_product(net, batch_size)
        if work <= BLAS_SINGLE_WORK or work >= BLAS_THREADS_WORK:
            yield
            return
    with _blas_hold, (parallel_regions_in_turn() if parallel else contextlib.nullcontext()):
        yield


class _BlasHold:
    """BLAS at one thread while any Python thread holds it (a context manager; nested and
    concurrent holds count), the threads it had before restored when the last one ends.

    OpenBLAS's thread count is the process's (its pthreads build), and threadpoolctl lets
    only the first Python thread that sets it change it (others silently do nothing), so
    a fit in a second thread would run its products on BLAS's threads: oversubscribed
    and, where BLAS's result depends on its thread count, other bits than the same fit in
    the main thread. So the hold calls OpenBLAS's own setter, from whichever thread."""

    def __init__(self):
        self._lock, self._holders, self._before = threading.Lock(), 0, None

    def __enter__(self):
        with self._lock:
            if self._holders == 0:
                self._before = [(setter, pool.get_num_threads())
                                for pool, setter in _blas_setters()]
                for setter, _ in self._before:
                    setter(1)
            self._holders += 1

    def __exit__(self, *exc):
        with self._lock:
            self._holders -= 1
            if self._holders == 0:
                for setter, n in self._before:
                    setter(n)
        return False


_blas_hold = _BlasHold()


def single_threaded_blas():
    """A context in which BLAS runs on one thread (the process's counted hold, as in
    ``one_pool``): for a Python loop that calls BLAS itself between the kernels' parallel
    regions — SciPy's L-BFGS-B between evaluations — whose BLAS threads, woken by those
    calls, would still spin on the cores when the next region starts (a 1 ms evaluation
    then took 5 to 40 ms on 2 cores)."""
    return _blas_hold


def _blas_setters():
    """(controller, ``set(n)`` that works from any thread) of each BLAS library (found
    once, as the controllers are)."""
    global _setters
    if _setters is None:
        _setters = [(pool, _thread_count_setter(pool)) for pool in _blas_controllers()]
    return _setters


_setters = None


def _thread_count_setter(pool):
    """``set(n)`` of a threadpoolctl controller's library that works from any thread:
    OpenBLAS's own function for its pthreads build, the controller's otherwise."""
    if pool.internal_api == "openblas" and getattr(pool, "threading_layer", "") != "openmp":
        for prefix, suffix in itertools.product(("", "scipy_"), ("", "64_", "_64")):
            setter = getattr(pool.dynlib, f"{prefix}openblas_set_num_threads{suffix}", None)
            if setter is not None:
                setter.argtypes, setter.restype = [ctypes.c_int], None
                return setter
    return pool.set_num_threads


def set_num_threads(n):
    """Use ``n`` threads for the matrix products (every BLAS library loaded in the
    process, SciPy's included, which Numba's ``np.dot`` calls) and for Numba."""
    global _limits
    n = check_positive_int(n, "n")
    _load_blas()
    _limits = threadpool_limits(limits=n, user_api="blas")
    for _, setter in _blas_setters():   # threadpoolctl sets OpenBLAS from one thread only
        setter(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def get_num_threads():
    """Threads of the BLAS library that fastnn's products run on (SciPy's OpenBLAS)."""
    _load_blas()
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    scipy_pools = [p for p in pools if "scipy" in p.get("filepath", "")]
    return (scipy_pools or pools or [{"num_threads": numba.get_num_threads()}])[0]["num_threads"]


#: a thread count's per-step time is trusted from chunks of this many steps on (shorter
#: ones, an epoch's last steps say, carry the call's fixed cost and the scheduler's noise)
MEASURED_STEPS = 8
#: chunks the faster choice runs before the other is tried again, at first; each trial
#: the other loses doubles it (quadruples, when it lost by SLOWDOWN), up to
#: LONGEST_PATIENCE (a trial that wins resets it)
FIRST_PATIENCE, LONGEST_PATIENCE = 2, 64
#: a fit starting from the last fit's choice tries the other after at most this many chunks
REMEMBERED_PATIENCE = 8
#: a chunk this much slower per step than the choice's estimate tries the other at once
#: (a neighbour process has started, say)
SLOWDOWN = 1.5


class ThreadChooser:
    """The threads that run each compiled chunk of a fit: the pool's, or one, whichever
    measured faster per step, so that a parallel step never waits a scheduler time slice
    for a thread that is not running (a busy neighbour process, a machine with more
    workers than cores) and a step that threads do not speed up runs on one.

    The work's partition into blocks and parts depends on the pool's size at launch,
    not on the threads running it (kernels/_matmul.py, kernels/_split.py), so the choice
    never changes a bit of the result. Each choice keeps an estimate of its time per step (the
    latest chunk of MEASURED_STEPS steps or more); the faster runs, and the other is
    tried again on a chunk a quarter as long after ``patience`` chunks (doubled each time
    it loses, quadrupled when it loses by SLOWDOWN), or at once when the faster one slows
    down by SLOWDOWN. A fit starts from the choice the last fit of the same network and
    batch size in this process ended with (``key``): the many fits of a search or a
    cross-validation learn once."""

    _last = {}

    def __init__(self, plan, key=None, threads=None):
        pool = numba.get_num_threads() if threads is None else threads
        self.choices = (pool, 1) if (plan.parallel or plan.split) and pool > 1 else (pool,)
        self.key = (key, self.choices)
        self.current, self.patience = self._last.get(self.key, (self.choices[0],
                                                                FIRST_PATIENCE))
        self.per_step = {}
        self.trying = None
        self.since_trial = 0
        self._first = True

    def _other(self):
        return self.choices[1] if self.current == self.choices[0] else self.choices[0]

    def next(self, steps):
        """(threads, steps) for the next chunk, given the steps the chunk sizer asks for."""
        if len(self.choices) == 1 or self._first or self.current not in self.per_step:
            return self.current, steps
        other = self._other()
        if other not in self.per_step and self.key not in self._last \
                or self.since_trial >= self.patience:
            self.trying = other
            return other, max(min(steps, MEASURED_STEPS), steps // 4)
        return self.current, steps

    def record(self, threads, steps, seconds):
        """A chunk of ``steps`` steps on ``threads`` threads took ``seconds``."""
        trial, self.trying = self.trying, None
        if self._first:   # the fit's first call: loads (or compiles) and touches memory
            self._first = False
            return
        if len(self.choices) == 1 or steps < MEASURED_STEPS:
            return
        per_step = seconds / steps
        before = self.per_step.get(threads)
        self.per_step[threads] = per_step
        if trial is None:
            self.since_trial += 1
            other = self.per_step.get(self._other())
            if before is not None and per_step > SLOWDOWN * before and \
                    (other is None or per_step > other):
                self.since_trial = self.patience   # try the other next
            return
        self.since_trial = 0
        current = self.per_step.get(self.current, float("inf"))
        if per_step < current:
            self.current, self.patience = threads, FIRST_PATIENCE
        else:   # lost: wait longer before the next trial, much longer after a clear loss
            growth = 4 if per_step > SLOWDOWN * current else 2
            self.patience = min(growth * self.patience, LONGEST_PATIENCE)
        self._last[self.key] = (self.current, min(self.patience, REMEMBERED_PATIENCE))


@contextlib.contextmanager
def numba_threads(n):
    """Numba's parallel regions started by this thread use ``n`` threads inside
    (numba.set_num_threads is per calling thread); the count before is restored on exit."""
    before = numba.get_num_threads()
    if n == before:
        yield
        return
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(before)
