"""``fit``'s arguments, checked once into one record (``FitConfig``) that the fit loop and
its engines read, instead of long positional lists. Every check runs before any kernel,
and a failing one leaves the model as it was."""
import dataclasses
import numbers

import numpy as np

from fastnn.optimizers import check_clip, get_optimizer
from fastnn.validation import check_positive_int, check_sample_weight


@dataclasses.dataclass
class FitConfig:
    """What one ``fit`` trains on and how: data (``X``, ``T``, ``sample_weight`` (n,) or None,
    ``val`` = (X_val, T_val, weights or None) or None), ``epochs``, ``batch_size`` (at
    most the rows), ``optimizer`` (the instance that becomes ``model.optimizer``),
    ``clip`` ((max_norm, max_value), ∞ for none), ``shuffle``, ``rng`` (the shuffling
    generator), ``verbose``, ``callbacks`` (a list), ``early_stopping`` (epochs or
    None) and ``comm`` (an mpi4py communicator or None)."""

    X: np.ndarray
    T: np.ndarray
    sample_weight: np.ndarray
    val: tuple
    epochs: int
    batch_size: int
    optimizer: object
    clip: np.ndarray
    shuffle: object
    rng: np.random.Generator
    verbose: int
    callbacks: list
    early_stopping: int
    comm: object

    @property
    def facts(self):
        """What every process of a data-parallel fit must have been given alike."""
        return {"X shape": self.X.shape, "y shape": self.T.shape,
                "dtype": np.dtype(self.X.dtype).name, "epochs": self.epochs,
                "batch_size": self.batch_size, "optimizer": repr(self.optimizer),
                "validation rows": None if self.val is None else self.val[0].shape[0],
                "sample weights": None if self.sample_weight is None else
                float(self.sample_weight.sum()),
                "early_stopping": self.early_stopping, "clip": self.clip,
                "callbacks": len(self.callbacks)}


def fit_config(model, X, y, options):
    """The FitConfig of ``model.fit(X, y, **options)`` (``options``: fit's keyword
    arguments, all of them), or a TypeError/ValueError naming the argument at fault."""
    X, T = model._xy(X, y)
    sample_weight = check_sample_weight(options["sample_weight"], X.shape[0])
    epochs = check_positive_int(options["epochs"], "epochs")
    batch_size = min(check_positive_int(options["batch_size"], "batch_size"), X.shape[0])
    model._check_batch_statistics(X.shape[0], batch_size, "batch_size")
    optimizer = options["optimizer"]
    optimizer = model.optimizer if optimizer is None and model.optimizer is not None \
        else get_optimizer(optimizer)
    clip = check_clip(options["clip_norm"], options["clip_value"])
    val = _validation(model, options["validation_data"])
    shuffle = options["shuffle"]
    if not isinstance(shuffle, (bool, np.bool_)) and not callable(shuffle):
        raise TypeError(f"shuffle must be a bool or a function, got {type(shuffle).__name__}")
    seed = options["seed"]
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise TypeError(f"seed must be an integer or None, got {type(seed).__name__}")
    early_stopping = options["early_stopping"]
    if early_stopping is not None:
        early_stopping = check_positive_int(early_stopping, "early_stopping")
        if val is None:
            raise ValueError("early_stopping needs validation_data")
    callbacks = list(options["callbacks"])
    for cb in callbacks:
        if not callable(cb):
            raise TypeError(f"callbacks must be callables, got {type(cb).__name__}")
    if options["comm"] is not None:
        _check_data_parallel(model)
    rng = np.random.default_rng(seed) if seed is not None else model._rng
    return FitConfig(X, T, sample_weight, val, epochs, batch_size, optimizer, clip, shuffle,
                     rng, options["verbose"], callbacks, early_stopping, options["comm"])


def _validation(model, validation_data):
    """(X_val, T_val, weights or None) from (X_val, y_val) or (X_val, y_val, weights)."""
    if validation_data is None:
        return None
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise ValueError("validation_data must be a tuple (X_val, y_val) or (X_val, y_val, "
                         "sample_weight_val)")
    X, T = model._xy(*validation_data[:2], xname="validation_data[0]",
                     yname="validation_data[1]")
    weights = validation_data[2] if len(validation_data) == 3 else None
    return X, T, check_sample_weight(weights, X.shape[0], "validation_data[2]")



def _check_data_parallel(model):
    """What a data-parallel fit (``comm``) cannot train."""
    if model.device != "cpu":
        raise ValueError(f"comm: data-parallel training runs on the CPU; this model has "
                         f"device={model.device!r}")
    if model.has_batchnorm or any(b.drop > 0.0 for b in model.blocks):
        raise ValueError("comm: BatchNorm and Dropout are not supported in data-parallel "
                         "training (each process would normalize with its own share's "
                         "statistics and draw its own masks)")
    if model.params.size >= 2 ** 31:
        raise ValueError(f"comm: {model.params.size} parameters; MPI counts stop at 2^31 - 1")
