"""Callbacks of ``fit``. A plain callable ``cb(epoch, logs)`` is called after each epoch
(returning True stops training); a ``Callback`` also learns, before the first update,
which model and optimizer it serves, and may check that ``fit`` gives it what it needs.
"""
import math
import os
import re
import string

from fastnn.atomic_file import remove_stale_temporaries
from fastnn.validation import check_in_range, check_positive_int


class Callback:
    """Base class. ``on_train_begin`` runs after ``fit`` has validated its arguments and
    before any kernel; ``on_epoch_end(epoch, logs)`` after each epoch (True stops).
    ``needs_host_state = True`` asks ``fit`` to bring the host's parameters and optimizer
    state up to date before the call (they live on the GPU with device="cuda")."""

    needs_host_state = False

    def on_train_begin(self, model, optimizer, has_validation):
        self.model, self.optimizer = model, optimizer

    def on_epoch_end(self, epoch, logs):
        return False

    def __call__(self, epoch, logs):
        return self.on_epoch_end(epoch, logs)


def _check_monitor(callback, model, has_validation):
    """A clear error, before training, when ``callback.monitor`` is not a logged metric."""
    metrics = ["loss", "accuracy"] if model.is_classifier else ["loss"]
    available = metrics + (["val_" + m for m in metrics] if has_validation else [])
    if callback.monitor not in available:
        need = " (it needs validation_data)" if callback.monitor.startswith("val_") else ""
        raise ValueError(f"{type(callback).__name__}: monitor {callback.monitor!r} is not "
                         f"logged by this fit{need}; choose from {available}")


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved for
    ``patience`` epochs (never below ``min_lr``). Improvement means lower by more than
    ``min_delta`` (higher, for a monitor named like an accuracy). With a schedule as
    the optimizer's rate, the schedule's output is scaled (``optimizer.lr_scale``)."""

    def __init__(self, factor=0.1, patience=10, min_lr=0.0, monitor="val_loss", min_delta=0.0):
        self.factor = check_in_range(factor, "factor", 0.0, 1.0, low_open=True, high_open=True)
        self.patience = check_positive_int(patience, "patience")
        self.min_lr = check_in_range(min_lr, "min_lr", 0.0, math.inf, high_open=True)
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a string, got {type(monitor).__name__}")
        self.monitor = monitor
        self.min_delta = check_in_range(min_delta, "min_delta", 0.0, math.inf, high_open=True)
        self.maximize = "accuracy" in monitor
        self.best, self.wait = None, 0

    def on_train_begin(self, model, optimizer, has_validation):
        super().on_train_begin(model, optimizer, has_validation)
        _check_monitor(self, model, has_validation)
        self.best, self.wait = None, 0

    def _improved(self, value):
        if self.best is None:
            return True
        if self.maximize:
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def on_epoch_end(self, epoch, logs):
        value = logs[self.monitor]
        if self._improved(value):
            self.best, self.wait = value, 0
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.wait = 0
            current = self.optimizer.current_lr()
            target = max(current * self.factor, self.min_lr)
            if 0.0 < target < current:
                self.optimizer.lr_scale *= target / current
        return False

    def __repr__(self):
        return (f"ReduceLROnPlateau(factor={self.factor:g}, patience={self.patience}, "
                f"min_lr={self.min_lr:g}, monitor={self.monitor!r})")


def _remove_stale_temporaries(template):
    """Remove the temporary files that killed saves left of any file ``template`` names
    (``template.format(epoch=k)``; a save sweeps only its own target's, and a run that is
    killed and restarted saves under new epoch numbers)."""
    folder, name = os.path.split(os.path.abspath(template))
    if "{" in folder:
        return
    name_regex = "".join(re.escape(literal) + (".+" if field is not None else "")
                         for literal, field, _, _ in string.Formatter().parse(name))
    remove_stale_temporaries(folder, name_regex)


class Checkpoint(Callback):
    """Save the model through ``model.save(path)`` after each epoch, or with
    ``best_only=True`` after each epoch that improves ``monitor`` (lower is better;
    higher for a monitor named like an accuracy). ``path`` may contain ``{epoch}``
    (1-based), e.g. "model-{epoch:03d}.fnn", to keep one file per epoch. A file holds
    everything ``fastnn.load`` needs to resume training exactly."""

    needs_host_state = True

    def __init__(self, path, best_only=False, monitor="val_loss"):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or path, got {type(path).__name__}")
        self.path = os.fspath(path)
        try:
            self.path.format(epoch=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"path {self.path!r}: only {{epoch}} may be formatted into it "
                             f"({exc})") from None
        if not isinstance(best_only, bool):
            raise TypeError(f"best_only must be a bool, got {type(best_only).__name__}")
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a string, got {type(monitor).__name__}")
        self.best_only, self.monitor = best_only, monitor
        self.maximize = "accuracy" in monitor
        self.best = None

    def on_train_begin(self, model, optimizer, has_validation):
        super().on_train_begin(model, optimizer, has_validation)
        if self.best_only:
            _check_monitor(self, model, has_validation)
        self.best = None
        _remove_stale_temporaries(self.path)

    def on_epoch_end(self, epoch, logs):
        if self.best_only:
            value = logs[self.monitor]
            if not math.isfinite(value) or self.best is not None and not (
                    value > self.best if self.maximize else value < self.best):
                return False
            self.best = value
        if getattr(self.model, "_rank", 0) == 0:   # a data-parallel fit: rank 0 writes
            self.model.save(self.path.format(epoch=epoch + 1))
        return False

    def __repr__(self):
        return (f"Checkpoint({self.path!r}, best_only={self.best_only}, "
                f"monitor={self.monitor!r})")
