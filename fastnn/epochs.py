"""Long epochs that answer: an epoch runs as compiled chunks of consecutive steps, each
about CHUNK_SECONDS long, so that between chunks ``fit`` can notice Ctrl-C and show
progress. Chunks end at step boundaries and continue each other's sums exactly
(the engines' ``train``: fastnn.engines), so chunking changes neither the result nor, at a few
microseconds per chunk, the speed.
"""
import signal
import sys
import threading

import numpy as np

#: the length aimed at for one compiled call: Ctrl-C takes effect within about this long
CHUNK_SECONDS = 0.2
#: epochs expected to last longer than this show an in-epoch progress bar (on a terminal)
PROGRESS_AFTER = 1.0
#: a chunk at most this many times longer (in steps) than the one before
GROWTH = 4


def epoch_order(perm, shuffle, rng):
    """Put the next epoch's sample order into ``perm``: ``shuffle_order`` for
    shuffle=True, the caller's ``shuffle(perm)`` for a function (which must leave a
    permutation of 0..n-1: its indices are checked to lie in range, since the kernels
    index X and T with them unchecked), the order as it is for False."""
    if callable(shuffle):
        shuffle(perm)
        if perm.shape[0] and (perm.min() < 0 or perm.max() >= perm.shape[0]):
            raise ValueError(f"shuffle(perm) left indices outside [0, {perm.shape[0]}): "
                             f"min {perm.min()}, max {perm.max()}")
    elif shuffle:
        shuffle_order(perm, rng)


def shuffle_order(perm, rng):
    """perm <- a random permutation of 0..n-1 drawn from ``rng``, starting from the
    identity each epoch: an epoch's order depends only on the generator's state, so a
    fit resumed from a saved model draws the orders the uninterrupted fit would have."""
    perm[:] = np.arange(perm.shape[0])
    rng.shuffle(perm)


class ChunkSizer:
    """Steps per compiled call, from the measured duration of the previous calls: the
    first is one step (it may include compiling), each next one aims at CHUNK_SECONDS
    and grows at most GROWTH-fold."""

    def __init__(self, seconds=CHUNK_SECONDS):
        self.seconds = seconds
        self.steps = 1

    def record(self, steps, elapsed):
        """A call of ``steps`` steps took ``elapsed`` seconds."""
        if steps >= self.steps or elapsed > self.seconds:   # a full chunk (or a slow one)
            per_step = max(elapsed, 1e-9) / steps
            self.steps = max(1, min(GROWTH * self.steps, int(self.seconds / per_step)))


class Interrupt:
    """While active (in the main thread), the first Ctrl-C (SIGINT) only sets
    ``requested``, for ``fit`` to stop at the next step boundary with the model
    consistent; it also restores the previous handler, so a second Ctrl-C interrupts
    at once as usual."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        return False


class Progress:
    """The in-epoch progress line (steps done, samples/s, ETA) of ``fit(verbose=1)``: only
    on a terminal, and only for an epoch expected to last more than PROGRESS_AFTER."""

    def __init__(self, enabled, stream=None):
        self.stream = sys.stdout if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(enabled) and callable(isatty) and isatty()
        self.shown = False

    def update(self, label, steps_done, steps_total, samples_done, elapsed):
        if not self.enabled or steps_done >= steps_total or elapsed <= 0.0:
            return
        eta = elapsed * (steps_total - steps_done) / steps_done
        if not self.shown and elapsed + eta < PROGRESS_AFTER:
            return
        self.shown = True
        self.stream.write(f"\r{label}  {steps_done}/{steps_total} steps  "
                          f"{samples_done / elapsed:,.0f} samples/s  ETA {eta:.1f} s\x1b[K")
        self.stream.flush()

    def clear(self):
        """Erase the line before the epoch's summary is printed."""
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


class EpochRun:
    """What the epoch loops of ``fit`` share with ``fit`` itself: the chunk sizer, the
    Ctrl-C flag and the progress line."""

    def __init__(self, interrupt, progress):
        self.sizer = ChunkSizer()
        self.interrupt = interrupt
        self.progress = progress

    @property
    def stopped(self):
        return self.interrupt.requested
