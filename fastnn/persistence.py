"""Saving and loading models: one ``.npz`` file, no pickle, written atomically.

A model file (conventionally ``.fnn``) is a zip of ``.npy`` members that ``np.load``
reads like any ``np.savez`` output (written by fastnn.container, which also checks
every byte of it on loading):

    header            uint8: UTF-8 JSON — format and fastnn versions, the layers with
                      their settings, loss, dtype, seed, dropout key, the shuffling
                      generator's state, the last fit's optimizer (class,
                      hyperparameters, schedule, lr_scale, step count), and the CSV
                      preprocessing of ``fastnn train PATH.csv`` (fastnn.tabular)
    params, stats     the flat parameter vector and BatchNorm's running statistics
    optimizer_state   the optimizer's state vectors (rows × parameters), when it has any

Loading never unpickles (members must be plain numeric arrays) and builds objects only
from the whitelisted layer, optimizer and schedule classes named in the header: nothing
in a file can run code. Every field is checked (type, range, shapes against the header,
dtypes) before the model is built; anything wrong raises ValueError naming the file and
the problem.
Saving writes a temporary file in the target's folder, flushes and fsyncs it, then
renames it over the target (``os.replace``; fastnn.atomic_file), so a failure at any
point leaves the previous file as it was.
"""
import errno
import json
import numbers
import os
import struct

import numpy as np

from fastnn import container, tabular
from fastnn.atomic_file import atomic_write
from fastnn.buffers import aligned_zeros
from fastnn.layers import LAYERS
from fastnn.optimizers import OPTIMIZERS
from fastnn.schedules import SCHEDULES
from fastnn.version import __version__
from fastnn.kernels.contract import STATE_VECTORS

FORMAT = "fastnn-model"
#: the format this fastnn writes; it reads every version up to this one
FORMAT_VERSION = 1
_OPTIMIZER_CLASSES = {cls.__name__: cls for cls in OPTIMIZERS.values()}
_SCHEDULE_CLASSES = {cls.__name__: cls for cls in SCHEDULES}
_MEMBERS = {"header", "params", "stats"}
_OPTIONAL_MEMBERS = {"optimizer_state"}


# ------------------------------------------------------------------------ save
def save(model, path):
    """Write ``model`` to ``path`` atomically (see the module docstring)."""
    arrays = model_arrays(model)
    with atomic_write(os.fspath(path), what="the model") as f:
        container.write(f, arrays)


def model_arrays(model):
    """The members of ``model``'s file, name -> array (the parameter arrays are views of
    the model's): what ``save`` writes and ``model_from_arrays`` rebuilds from."""
    optimizer = model.optimizer
    bound = optimizer is not None and optimizer._owner is model and optimizer.state is not None
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fastnn_version": __version__,
        "model": {
            "layers": [{"type": type(layer).__name__, "config": layer.config()}
                       for layer in model.layers],
            "input_shape": list(model.input_shape),
            "loss": model.loss_name,
            "dtype": np.dtype(model.dtype).name,
            "seed": None if model.seed is None else int(model.seed),
            "device": model.device,
            "dropout_key": str(int(model.net.key)),
            "n_params": int(model.params.size),
            "n_stats": int(model.stats.size),
        },
        "rng": model._rng.bit_generator.state,
        "optimizer": None if optimizer is None else _optimizer_header(optimizer, bound),
        "preprocessing": None if model.preprocessing is None else model.preprocessing.config(),
    }
    arrays = {"header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8),
              "params": model.params, "stats": model.stats}
    if bound:
        arrays["optimizer_state"] = optimizer.state
    return arrays


def _optimizer_header(optimizer, bound):
    schedule = optimizer.schedule
    return {"class": type(optimizer).__name__,
            "hyperparameters": optimizer._hyper_config(),
            "schedule": {"class": type(schedule).__name__, "config": schedule._config()},
            "lr_scale": float(optimizer.lr_scale),
            "steps": int(optimizer.steps) if bound else 0}


# ------------------------------------------------------------------------ load
class _Invalid(Exception):
    """A problem with the file's contents (becomes ValueError naming the file)."""


def load(path, restore, *, device=None):
    """The model saved at ``path`` (fastnn.loading.load: ``restore`` builds the bare
    model, ``Sequential._restored``); ``device`` overrides the saved device."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "no such model file", path)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "a folder, not a model file", path)
    try:
        with open(path, "rb") as f:
            try:
                members = container.Reader(f, os.fstat(f.fileno()).st_size)
            except (container.CorruptContainer, struct.error) as exc:
                raise _Invalid(f"not a readable fastnn model file ({exc})") from None
            return _build(members, restore, device)
    except container.CorruptContainer as exc:
        raise ValueError(f"{path}: not a readable fastnn model file ({exc})") from None
    except _Invalid as exc:
        raise ValueError(f"{path}: {exc}") from None


class _InMemory:
    """``container.Reader``'s interface over a dict of arrays."""

    def __init__(self, arrays):
        self.members = arrays

    def shape(self, name):
        array = self.members[name]
        return array.dtype, array.shape

    def read(self, name, out=None):
        if out is None:
            return self.members[name].copy()
        np.copyto(out, self.members[name])
        return out


def model_from_arrays(arrays, restore, *, device=None):
    """The model (with its optimizer and shuffling generator) whose members, as
    ``model_arrays`` gives them, are ``arrays`` (fastnn.loading.model_from_arrays)."""
    if not isinstance(arrays, dict) or not all(
            isinstance(a, np.ndarray) and a.dtype.kind in "biuf" for a in arrays.values()):
        raise ValueError("a model's arrays are a dict of numeric ndarrays")
    try:
        return _build(_InMemory(arrays), restore, device)
    except _Invalid as exc:
        raise ValueError(f"invalid model arrays: {exc}") from None


def _field(mapping, key, kinds, where):
    if not isinstance(mapping, dict) or key not in mapping:
        raise _Invalid(f"the header lacks {where}{key!r}")
    value = mapping[key]
    if not isinstance(value, kinds) or isinstance(value, bool):   # no field is a bool
        raise _Invalid(f"the header's {where}{key!r} has the wrong type "
                       f"({type(value).__name__})")
    return value


def _header(members):
    dtype, shape = members.shape("header")
    if dtype != np.uint8 or len(shape) != 1 or shape[0] > 1 << 20:
        raise _Invalid("not a fastnn model file (its header is not UTF-8 bytes)")
    raw = members.read("header")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Invalid(f"its header is not valid JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _Invalid("not a fastnn model file (no fastnn format tag in its header)")
    version = _field(header, "format_version", int, "")
    written_by = header.get("fastnn_version", "an unknown version")
    if version > FORMAT_VERSION:
        raise _Invalid(f"written in model format version {version} by fastnn {written_by}; "
                       f"fastnn {__version__} reads versions up to {FORMAT_VERSION}: upgrade "
                       "fastnn to load it")
    if version < 1:
        raise _Invalid(f"unknown model format version {version}")
    return header


def _read_into(members, name, out):
    """Member ``name`` read into ``out`` after checking it has out's dtype and shape."""
    dtype, shape = members.shape(name)
    if shape != out.shape or dtype != out.dtype:
        raise _Invalid(f"member {name!r} is {dtype}{list(shape)}, the header describes "
                       f"{out.dtype}{list(out.shape)}")
    members.read(name, out)


def _build(members, restore, device):
    names = set(members.members)
    if "header" not in names:
        raise _Invalid("not a fastnn model file (no 'header' member)")
    unknown, missing = names - _MEMBERS - _OPTIONAL_MEMBERS, _MEMBERS - names
    if unknown or missing:
        raise _Invalid(f"unexpected members {sorted(unknown)} / missing members "
                       f"{sorted(missing)}")
    header = _header(members)
    spec = _field(header, "model", dict, "")
    layers = []
    for i, entry in enumerate(_field(spec, "layers", list, "model ")):
        kind = _field(entry, "type", str, f"layer {i} ")
        config = _field(entry, "config", dict, f"layer {i} ")
        if kind not in LAYERS:
            raise _Invalid(f"layer {i} is of unknown type {kind!r}")
        try:
            layers.append(LAYERS[kind](**config))
        except (TypeError, ValueError) as exc:
            raise _Invalid(f"layer {i} ({kind}): {exc}") from None
    seed = spec.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise _Invalid(f"the model's seed {seed!r} is not a non-negative integer")
    key = _field(spec, "dropout_key", str, "model ")
    if not key.isdigit() or int(key) >= 2 ** 64:
        raise _Invalid(f"the dropout key {key!r} is not a 64-bit unsigned integer")
    device = _field(spec, "device", str, "model ") if device is None else device
    input_shape = spec.get("input_shape")       # files of fastnn 0.2: the first Dense's
    if input_shape is not None:
        input_shape = tuple(_field(spec, "input_shape", list, "model "))
    try:
        model = restore(layers, input_shape, _field(spec, "loss", str, "model "),
                        _field(spec, "dtype", str, "model "), seed, device, int(key))
    except (TypeError, ValueError) as exc:
        raise _Invalid(f"its model description is invalid: {exc}") from None
    n = model.params.size
    if (_field(spec, "n_params", int, "model "), _field(spec, "n_stats", int, "model ")) != \
            (n, model.stats.size):
        raise _Invalid("the parameter counts in the header do not match its layers")
    model._rng = _generator(_field(header, "rng", dict, ""))
    if header.get("optimizer") is not None:
        model.optimizer = _optimizer(_field(header, "optimizer", dict, ""), members, model)
    elif "optimizer_state" in members.members:
        raise _Invalid("it holds optimizer state but no optimizer")
    if header.get("preprocessing") is not None:
        try:
            model.preprocessing = tabular.from_config(header["preprocessing"])
        except ValueError as exc:
            raise _Invalid(str(exc)) from None
        if (model.preprocessing.n_features, model.preprocessing.n_outputs) != \
                (model.n_inputs, model.n_outputs):
            raise _Invalid("its CSV preprocessing does not match the model's inputs and "
                           "outputs")
    _read_into(members, "params", model.params)
    _read_into(members, "stats", model.stats)
    return model


def _generator(state):
    if state.get("bit_generator") != "PCG64":
        raise _Invalid(f"unknown shuffling generator {state.get('bit_generator')!r}")
    bit_generator = np.random.PCG64()
    try:
        bit_generator.state = state
    except (TypeError, ValueError, KeyError) as exc:
        raise _Invalid(f"invalid shuffling generator state ({exc})") from None
    return np.random.Generator(bit_generator)


def _optimizer(spec, members, model):
    name = _field(spec, "class", str, "optimizer ")
    schedule_spec = _field(spec, "schedule", dict, "optimizer ")
    schedule_name = _field(schedule_spec, "class", str, "schedule ")
    if name not in _OPTIMIZER_CLASSES:
        raise _Invalid(f"unknown optimizer class {name!r}")
    if schedule_name not in _SCHEDULE_CLASSES:
        raise _Invalid(f"unknown schedule class {schedule_name!r}")
    try:
        schedule = _SCHEDULE_CLASSES[schedule_name](**_field(schedule_spec, "config", dict,
                                                             "schedule "))
        optimizer = _OPTIMIZER_CLASSES[name](lr=schedule, **_field(spec, "hyperparameters",
                                                                    dict, "optimizer "))
    except (TypeError, ValueError) as exc:
        raise _Invalid(f"invalid optimizer {name}: {exc}") from None
    lr_scale = _field(spec, "lr_scale", numbers.Real, "optimizer ")
    steps = _field(spec, "steps", int, "optimizer ")
    if not 0.0 < lr_scale <= 1.0 or steps < 0:
        raise _Invalid(f"invalid optimizer lr_scale {lr_scale!r} or step count {steps!r}")
    optimizer.lr_scale = float(lr_scale)
    if "optimizer_state" in members.members:
        state = aligned_zeros((STATE_VECTORS[optimizer.code], model.params.size),
                              model.params.dtype)
        _read_into(members, "optimizer_state", state)
        optimizer.state, optimizer.steps, optimizer._owner = state, steps, model
    elif steps:
        raise _Invalid("the optimizer's step count is not 0 but its state is missing")
    return optimizer
