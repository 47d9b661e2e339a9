"""One line before fastnn compiles kernels, and one with the time it took.

A model's first fit (or prediction) of a new configuration compiles its kernels: seconds
of silence that look like a hang. Later runs load them from Numba's cache in
milliseconds. So when a fastnn kernel starts compiling — Numba's ``numba:compile`` event,
which a load from the cache never sends — the logger ``fastnn`` gets, at INFO level,

    compiling kernels for this model (once: they are cached in PATH)

and, when the operation that needed them ends or prints its next line (``flush``),
``compiled kernels in 6.1 s``. Inside ``announcing(echo=True)`` (``fit(verbose>=1)``, an
estimator's ``verbose``) and after ``echo_to_stderr()`` (the command line) the lines go to
stderr as well, unless the logger already shows INFO records somewhere.
"""
import logging
import sys
import threading
import time

from numba.core import event

logger = logging.getLogger("fastnn")

_KERNELS = "fastnn.kernels"


class _State(threading.local):
    """Per thread: Numba compiles in the thread that calls the kernel."""

    def __init__(self):
        self.depth = 0           # compiles in progress (a kernel compiles its callees)
        self.operations = 0      # ``announcing`` blocks entered
        self.echo = False
        self.announced = False   # the "compiling" line is out, its time not yet
        self.began = None        # start of the outermost fastnn compile in progress
        self.seconds = 0.0       # compile time since the "compiling" line


_state = _State()


def cache_folder():
    """The folder of fastnn's kernel cache in this process."""
    from fastnn.kernels.contract import forward_pass

    return forward_pass._cache._cache_path


def _say(message):
    logger.info(message)
    if _state.echo and not (logger.isEnabledFor(logging.INFO) and logger.hasHandlers()):
        print(f"fastnn: {message}", file=sys.stderr, flush=True)


def flush():
    """Say how long the compiles announced took, if any were (before a progress line)."""
    if _state.announced and _state.began is None:
        _say(f"compiled kernels in {_state.seconds:.1f} s")
        _state.announced, _state.seconds = False, 0.0


def _is_fastnn(data):
    py_func = getattr(data.get("dispatcher"), "py_func", None)
    return getattr(py_func, "__module__", "").startswith(_KERNELS)


class _Listener(event.Listener):
    """Announces the outermost compile of a fastnn kernel in each thread."""

    def on_start(self, ev):
        if _state.depth == 0 and _is_fastnn(ev.data):
            _state.began = time.perf_counter()
            if not _state.announced:
                _state.announced = True
                _say(f"compiling kernels for this model (once: they are cached in "
                     f"{cache_folder()})")
        _state.depth += 1

    def on_end(self, ev):
        _state.depth -= 1
        if _state.depth == 0 and _state.began is not None:
            _state.seconds += time.perf_counter() - _state.began
            _state.began = None
            if _state.operations == 0:
                flush()


class announcing:
    """Around one operation of the model layer (a fit, a prediction): its compiles, however
    many kernels, are announced once, their time said at the end (or at a ``flush``);
    ``echo`` also writes the lines to stderr."""

    def __init__(self, echo=False):
        self.echo = bool(echo)

    def __enter__(self):
        self._outer_echo = _state.echo
        _state.echo = _state.echo or self.echo
        _state.operations += 1
        return self

    def __exit__(self, *exc):
        _state.operations -= 1
        if _state.operations == 0:
            flush()
        _state.echo = self._outer_echo
        return False


def echo_to_stderr(on=True):
    """Write the lines to stderr too, from now on, in this thread (the command line)."""
    _state.echo = bool(on)


event.register("numba:compile", _Listener())
