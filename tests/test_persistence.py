"""Saving and loading (fastnn.persistence): exact resume in a fresh process, damaged and
foreign files, atomic writes, clear errors; model.optimizer; the Checkpoint callback."""
import json
import os
import pathlib
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastnn
from fastnn import container, persistence

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _data(rng, n=203, d=6, k=3):
    X = rng.standard_normal((n, d))
    y = rng.integers(0, k, n)
    return X, y


def _remedies_model(dtype, seed):
    """BatchNorm, Dropout (input and hidden), softmax output: every kind of state."""
    return fastnn.Sequential([
        fastnn.Dropout(0.1), fastnn.Dense(6, 11, l2=1e-3), fastnn.BatchNorm(11),
        fastnn.Activation("tanh"), fastnn.Dropout(0.25), fastnn.Dense(11, 3, activation="softmax"),
    ], loss="categorical_crossentropy", dtype=dtype, seed=seed)


def _optimizer():
    return fastnn.AdamW(lr=fastnn.CosineDecay(0.02, total_steps=60, warmup_steps=4),
                        weight_decay=0.05)


_RESUME = textwrap.dedent("""
    import sys, numpy as np, fastnn
    model = fastnn.load(sys.argv[1])
    data = np.load(sys.argv[2])
    model.fit(data["X"], data["y"], epochs=2, batch_size=16, verbose=0)
    np.savez(sys.argv[3], params=model.params, stats=model.stats,
             state=model.optimizer.state, steps=model.optimizer.steps)
""")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("seed", [7, None])
def test_resume_in_a_fresh_process_is_bitwise_exact(tmp_path, dtype, seed):
    """fit 3 epochs, save, load in a new process, fit 2 more == fit 5 in one go — with
    BatchNorm, Dropout, AdamW and CosineDecay; the model's seed and fit's seed None."""
    X, y = _data(np.random.default_rng(3))
    initial = tmp_path / "initial.fnn"
    _remedies_model(dtype, seed).save(initial)   # seed None: the same draw for both runs

    whole = fastnn.load(initial)
    whole.fit(X, y, epochs=5, batch_size=16, optimizer=_optimizer(), verbose=0)

    part = fastnn.load(initial)
    part.fit(X, y, epochs=3, batch_size=16, optimizer=_optimizer(), verbose=0)
    part.save(tmp_path / "part.fnn")
    np.savez(tmp_path / "data.npz", X=X, y=y)
    subprocess.run([sys.executable, "-c", _RESUME, str(tmp_path / "part.fnn"),
                    str(tmp_path / "data.npz"), str(tmp_path / "resumed.npz")],
                   check=True, cwd=ROOT)
    resumed = np.load(tmp_path / "resumed.npz")
    assert int(resumed["steps"]) == whole.optimizer.steps == 5 * 13
    for name, expected in (("params", whole.params), ("stats", whole.stats),
                           ("state", whole.optimizer.state)):
        assert resumed[name].dtype == expected.dtype
        assert np.array_equal(resumed[name], expected), name


def test_load_restores_everything_saved(tmp_path):
    X, y = _data(np.random.default_rng(4))
    model = _remedies_model("float64", 11)
    opt = fastnn.SGD(lr=fastnn.StepDecay(0.05, step_size=7, gamma=0.5), momentum=0.8,
                     nesterov=True)
    model.fit(X, y, epochs=2, batch_size=32, optimizer=opt, verbose=0)
    opt.lr_scale = 0.25
    model.save(tmp_path / "m.fnn")
    loaded = fastnn.load(tmp_path / "m.fnn")
    assert repr(loaded) == repr(model)
    assert repr(loaded.optimizer) == repr(opt)
    assert type(loaded.optimizer) is fastnn.SGD and loaded.optimizer.steps == opt.steps
    assert loaded.optimizer.lr_scale == 0.25 and loaded.optimizer.current_lr() == opt.current_lr()
    assert np.array_equal(loaded.params, model.params)
    assert np.array_equal(loaded.stats, model.stats)
    assert np.array_equal(loaded.optimizer.state, opt.state)
    assert loaded.net.key == model.net.key
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
    for a, b in zip(loaded.dense_layers, model.dense_layers):   # views into the new vectors
        assert np.shares_memory(a.W, loaded.params) and np.array_equal(a.W, b.W)


def test_a_model_that_never_trained_saves_without_optimizer(tmp_path):
    model = fastnn.Sequential([fastnn.Dense(3, 2)], seed=1)
    model.save(tmp_path / "m.fnn")
    loaded = fastnn.load(tmp_path / "m.fnn")
    assert loaded.optimizer is None
    assert np.array_equal(loaded.params, model.params)


def test_fit_continues_with_model_optimizer():
    X, y = _data(np.random.default_rng(5))
    model = _remedies_model("float64", 2)
    model.fit(X, y, epochs=1, batch_size=50, verbose=0)
    assert type(model.optimizer) is fastnn.Adam and model.optimizer.lr == 1e-3
    sgd = fastnn.SGD(lr=0.01)
    model.fit(X, y, epochs=1, batch_size=50, optimizer=sgd, verbose=0)
    assert model.optimizer is sgd and sgd.steps == 5
    model.fit(X, y, epochs=2, batch_size=50, verbose=0)
    assert model.optimizer is sgd and sgd.steps == 15


def test_a_failed_fit_leaves_model_optimizer_unchanged():
    X, y = _data(np.random.default_rng(6))
    model = _remedies_model("float64", 2)
    model.fit(X, y, epochs=1, batch_size=50, verbose=0)
    kept = model.optimizer
    with pytest.raises(ValueError, match="epochs"):
        model.fit(X, y, epochs=0, optimizer=fastnn.SGD())
    assert model.optimizer is kept


# ------------------------------------------------------------ damaged files
@pytest.fixture
def saved(tmp_path):
    X, y = _data(np.random.default_rng(8))
    model = _remedies_model("float32", 3)
    model.fit(X, y, epochs=1, batch_size=32, verbose=0)
    path = tmp_path / "m.fnn"
    model.save(path)
    return path


def _rewrite(path, out, edit_header=None, savez=False, **replace):
    """A copy of the model file at ``path`` (read back by np.load: the container is a
    standard .npz) with its header edited and members replaced, written by fastnn's
    container (or by np.savez)."""
    with np.load(path) as npz:
        members = {name: npz[name] for name in npz.files}
    header = json.loads(members["header"].tobytes())
    if edit_header is not None:
        edit_header(header)
    members["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    members.update(replace)
    members = {k: v for k, v in members.items() if v is not None}
    if savez:
        np.savez(out, **members)
        os.replace(str(out) + ".npz", out)
    else:
        with open(out, "wb") as f:
            container.write(f, members)
    return out


def _assert_rejected(path, match):
    with pytest.raises(ValueError, match=match) as info:
        fastnn.load(path)
    assert str(path) in str(info.value)


def test_truncated_files_raise_value_error_naming_the_file(saved, tmp_path):
    data = saved.read_bytes()
    for cut in (0, 1, 30, len(data) // 3, len(data) // 2, len(data) - 100, len(data) - 1):
        bad = tmp_path / f"cut{cut}.fnn"
        bad.write_bytes(data[:cut])
        _assert_rejected(bad, "not a readable fastnn model file")


def test_every_flipped_byte_raises_value_error(saved, tmp_path):
    """Every byte of the file is covered: array data by the members' CRC-32, everything
    else (zip and .npy headers, directory, end records) by the checksum in the comment."""
    data = saved.read_bytes()
    bad = tmp_path / "flip.fnn"
    for pos in range(len(data)):
        flipped = bytearray(data)
        flipped[pos] ^= 1 << (pos % 8)
        bad.write_bytes(bytes(flipped))
        with pytest.raises(ValueError) as info:
            fastnn.load(bad)
        assert str(bad) in str(info.value), pos


def test_checksum_digits_in_another_case_are_rejected(tmp_path):
    """The checksum record is compared as written: "D" for "d" parses to the same number
    but is a flipped bit (bit 5), and was once let through by a lenient int(..., 16)."""
    path = tmp_path / "case.fnn"
    for k in range(1, 64):   # the first container whose checksum has a letter digit
        with open(path, "wb") as f:
            container.write(f, dict(a=np.arange(k, dtype=np.float64)))
        data = path.read_bytes()
        digits = data[-8:]
        if digits.upper() != digits:
            break
    path.write_bytes(data[:-8] + digits.upper())
    with open(path, "rb") as f, pytest.raises(container.CorruptContainer, match="damaged"):
        container.Reader(f, len(data))
    path.write_bytes(data)
    with open(path, "rb") as f:
        assert np.array_equal(container.Reader(f, len(data)).read("a"), np.arange(k))


def test_files_are_standard_npz(saved):
    """np.load reads a model file like any np.savez output (zip CRCs checked)."""
    model = fastnn.load(saved)
    with np.load(saved, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["header", "optimizer_state", "params", "stats"]
        assert np.array_equal(npz["params"], model.params)
        assert np.array_equal(npz["optimizer_state"], model.optimizer.state)
        assert json.loads(npz["header"].tobytes())["format"] == persistence.FORMAT


def test_random_and_empty_and_foreign_files(tmp_path):
    rng = np.random.default_rng(1)
    random_bytes = tmp_path / "random.fnn"
    random_bytes.write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    _assert_rejected(random_bytes, "not a readable fastnn model file")
    empty = tmp_path / "empty.fnn"
    empty.write_bytes(b"")
    _assert_rejected(empty, "not a readable fastnn model file")
    npy = tmp_path / "array.fnn"
    with open(npy, "wb") as f:
        np.save(f, np.arange(3))
    _assert_rejected(npy, "not a readable fastnn model file")
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.ones(3))
    _assert_rejected(foreign, "not a readable fastnn model file")
    with open(foreign, "wb") as f:   # a container, but not of a model
        container.write(f, dict(weights=np.ones(3)))
    _assert_rejected(foreign, "not a fastnn model file")
    tagless = tmp_path / "tagless.npz"
    with open(tagless, "wb") as f:
        container.write(f, dict(header=np.frombuffer(b'{"format": "other"}', np.uint8),
                                params=np.ones(1), stats=np.ones(0)))
    _assert_rejected(tagless, "no fastnn format tag")
    savez_copy = tmp_path / "savez.fnn"   # the right members, written by np.savez: no checksum
    np.savez(savez_copy, header=np.frombuffer(b'{"format": "other"}', np.uint8))
    os.replace(str(savez_copy) + ".npz", savez_copy)
    _assert_rejected(savez_copy, "not a readable fastnn model file")


def test_wrong_and_newer_format_versions(saved, tmp_path):
    newer = _rewrite(saved, tmp_path / "newer.fnn",
                     lambda h: h.update(format_version=persistence.FORMAT_VERSION + 1))
    _assert_rejected(newer, "upgrade fastnn")
    for version in (0, "1", 1.0, None):
        bad = _rewrite(saved, tmp_path / "version.fnn", lambda h: h.update(format_version=version))
        _assert_rejected(bad, "format_version|format version")


class _RunsCode:
    """Unpickling this would create the marker file: proof that code from a file ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_pickled_members_are_rejected_without_running_code(saved, tmp_path):
    marker = tmp_path / "code-ran"
    payload = np.empty(1, dtype=object)
    payload[0] = _RunsCode(marker)
    for member in ("params", "header", "optimizer_state"):
        bad = _rewrite(saved, tmp_path / f"pickled-{member}.fnn", savez=True,
                       **{member: payload})
        _assert_rejected(bad, "not a readable fastnn model file")
    raw_pickle = tmp_path / "pickle.fnn"
    raw_pickle.write_bytes(pickle.dumps(_RunsCode(marker)))
    _assert_rejected(raw_pickle, "not a readable fastnn model file")
    assert not marker.exists()


@pytest.mark.parametrize("edit, match", [
    (lambda h: h["model"]["layers"][1].update(type="Lambda"), "unknown type 'Lambda'"),
    (lambda h: h["model"]["layers"][1]["config"].update(n_out=12), "description is invalid|"
     "parameter counts|BatchNorm"),
    (lambda h: h["model"]["layers"][1]["config"].update(code="print(1)"), "layer 1"),
    (lambda h: h["model"].update(dtype="float16"), "description is invalid"),
    (lambda h: h["model"].update(n_params=5), "parameter counts"),
    (lambda h: h["model"].update(dropout_key="-1"), "dropout key"),
    (lambda h: h["model"].pop("loss"), "lacks model 'loss'"),
    (lambda h: h["optimizer"].update({"class": "os.system"}), "unknown optimizer class"),
    (lambda h: h["optimizer"]["schedule"].update({"class": "Evil"}), "unknown schedule class"),
    (lambda h: h["optimizer"]["hyperparameters"].update(beta1=2.0), "invalid optimizer"),
    (lambda h: h["optimizer"].update(steps=-3), "step count"),
    (lambda h: h["rng"].update(bit_generator="MT19937"), "shuffling generator"),
])
def test_invalid_header_fields(saved, tmp_path, edit, match):
    _assert_rejected(_rewrite(saved, tmp_path / "edited.fnn", edit), match)


def test_arrays_must_match_the_header(saved, tmp_path):
    with np.load(saved) as npz:
        params, state = npz["params"], npz["optimizer_state"]
    cases = {"short": dict(params=params[:-1]), "dtype": dict(params=params.astype(np.float64)),
             "state": dict(optimizer_state=state[:1]), "extra": dict(extra=np.ones(2)),
             "missing": dict(stats=None)}
    for name, replace in cases.items():
        _assert_rejected(_rewrite(saved, tmp_path / f"{name}.fnn", **replace),
                         "member|members")


# ------------------------------------------------------------ atomic saving
def _failing(monkeypatch, target, name, exc=OSError("disk on fire"), after=0):
    """Make ``target.name`` raise ``exc`` from its (after+1)-th call on."""
    original = getattr(target, name)
    calls = []

    def fail(*args, **kwargs):
        calls.append(1)
        if len(calls) > after:
            raise exc
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, fail)


@pytest.mark.parametrize("target, name, after", [
    ("fastnn.container", "_npy_header", 0),   # before any array is written
    ("fastnn.container", "_npy_header", 2),   # with part of the file written
    ("fastnn.container", "write", 0),
    ("os", "fsync", 0),
    ("os", "replace", 0),
])
@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()])
def test_an_interrupted_save_leaves_the_previous_file_intact(saved, monkeypatch, target, name,
                                                            after, exc):
    import importlib

    before = saved.read_bytes()
    model = fastnn.load(saved)
    model.params[:] = 0.5   # a save that completed would change the file
    _failing(monkeypatch, importlib.import_module(target), name, exc, after)
    with pytest.raises(type(exc)):
        model.save(saved)
    monkeypatch.undo()
    assert saved.read_bytes() == before
    assert sorted(os.listdir(saved.parent)) == ["m.fnn"]   # no temporary file left behind
    assert np.array_equal(fastnn.load(saved).params, np.load(saved)["params"])


def test_save_replaces_an_existing_file(saved):
    model = fastnn.load(saved)
    model.params[:] = 0.25
    model.save(saved)
    assert np.all(fastnn.load(saved).params == 0.25)
    assert sorted(os.listdir(saved.parent)) == ["m.fnn"]


def test_bad_paths_name_the_file(tmp_path):
    model = fastnn.Sequential([fastnn.Dense(2, 1)], seed=0)
    missing_folder = tmp_path / "no" / "such" / "m.fnn"
    with pytest.raises(FileNotFoundError, match="m.fnn"):
        model.save(missing_folder)
    a_file = tmp_path / "plain"
    a_file.write_text("x")
    with pytest.raises(NotADirectoryError, match="plain"):
        model.save(a_file / "m.fnn")
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        model.save(tmp_path)
    with pytest.raises(FileNotFoundError, match="nothing.fnn"):
        fastnn.load(tmp_path / "nothing.fnn")
    with pytest.raises(IsADirectoryError):
        fastnn.load(tmp_path)
    with pytest.raises(TypeError):
        model.save(3.5)


def test_unwritable_folder(tmp_path, monkeypatch):
    """The error of a folder that refuses the temporary file names the target file (the
    refusal is simulated: this suite may run as root, which writes anywhere)."""
    import errno

    create = os.open

    def refuse(path, flags, *args, **kwargs):
        if flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return create(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(PermissionError, match="cannot save the model.*m.fnn"):
        fastnn.Sequential([fastnn.Dense(2, 1)]).save(tmp_path / "m.fnn")
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------ Checkpoint
def test_checkpoint_best_only_saves_each_improvement(tmp_path):
    X, y = _data(np.random.default_rng(9))
    Xv, yv = _data(np.random.default_rng(10), n=60)
    model = _remedies_model("float64", 5)
    saved_at = []
    save = model.save

    def recording_save(path):   # an instance attribute: what Checkpoint calls
        saved_at.append((len(saved_at), model.params.copy()))
        save(path)

    model.save = recording_save
    path = tmp_path / "best.fnn"
    history = model.fit(X, y, epochs=8, batch_size=16, optimizer=fastnn.SGD(lr=0.5),
                        validation_data=(Xv, yv), verbose=0,
                        callbacks=[fastnn.Checkpoint(path, best_only=True)])
    losses = history.history["val_loss"]
    improving = [e for e in range(8) if losses[e] < min(losses[:e], default=np.inf)]
    assert 1 < len(improving) < 8   # the test means something: some epochs did not improve
    assert len(saved_at) == len(improving)
    best = fastnn.load(path)
    assert np.array_equal(best.params, saved_at[-1][1])
    assert best.evaluate(Xv, yv)["loss"] == min(losses)


def test_checkpoint_every_epoch_with_epoch_in_the_name(tmp_path):
    X, y = _data(np.random.default_rng(11))
    model = _remedies_model("float32", 5)
    model.fit(X, y, epochs=3, batch_size=64, verbose=0,
              callbacks=[fastnn.Checkpoint(tmp_path / "m-{epoch:02d}.fnn")])
    assert sorted(os.listdir(tmp_path)) == ["m-01.fnn", "m-02.fnn", "m-03.fnn"]
    last = fastnn.load(tmp_path / "m-03.fnn")
    assert np.array_equal(last.params, model.params)
    assert last.optimizer.steps == model.optimizer.steps == 12


def test_checkpoint_argument_errors(tmp_path):
    X, y = _data(np.random.default_rng(12))
    model = _remedies_model("float64", 5)
    with pytest.raises(ValueError, match="needs validation_data"):
        model.fit(X, y, callbacks=[fastnn.Checkpoint(tmp_path / "m.fnn", best_only=True)])
    assert model.optimizer is None and not os.listdir(tmp_path)
    with pytest.raises(TypeError, match="path"):
        fastnn.Checkpoint(3)
    with pytest.raises(ValueError, match="epoch"):
        fastnn.Checkpoint(tmp_path / "m-{step}.fnn")
    with pytest.raises(TypeError, match="best_only"):
        fastnn.Checkpoint(tmp_path / "m.fnn", best_only="yes")
