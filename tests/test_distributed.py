"""Data-parallel training over MPI (fastnn.distributed): the rank-side scripts in
tests/mpi run under ``mpiexec -n 2``; this module starts them and checks what they report."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fastnn

pytest.importorskip("mpi4py")
HERE = Path(__file__).parent
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")


def mpiexec(*args, timeout=600):
    if MPIEXEC is None:
        pytest.fail("mpi4py is installed but mpiexec was not found (pip install mpich)")
    return subprocess.run([MPIEXEC, "-n", "2", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=HERE.parent)


@pytest.fixture(scope="module")
def equivalence():
    done = mpiexec(sys.executable, str(HERE / "mpi" / "equivalence.py"))
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


TOLERANCE = {"float64": 1e-12, "float32": 1e-5}


def test_two_ranks_train_as_one_process_for_every_loss_and_optimizer(equivalence):
    cases = {(c["case"], c["dtype"]) for c in equivalence}
    optimizers = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "lamb")
    assert {(f"mse/{o}", "float64") for o in optimizers} <= cases
    assert {("mse/sgd", "float32"), ("mse/adam", "float32")} <= cases
    for dtype in TOLERANCE:
        assert {(f"{loss}/adam", dtype) for loss in ("binary_crossentropy",
                                                     "categorical_crossentropy")} <= cases
    assert {("sample weights", dtype) for dtype in TOLERANCE} <= cases
    for c in equivalence:
        assert c["rel"] <= TOLERANCE[c["dtype"]], c
        assert c["loss_rel"] <= TOLERANCE[c["dtype"]], c       # the reduced loss sums
        assert c["val_loss_rel"] <= TOLERANCE[c["dtype"]], c   # the sharded validation


def test_ranks_end_bitwise_identical_with_uneven_shares_and_either_seed(equivalence):
    names = {c["case"] for c in equivalence}
    assert {"odd batch 33", "last minibatch of 1", "seed=None", "regularized, clipped"} <= names
    assert len(equivalence) == 15 + 8     # float64, float32 cases
    assert all(c["ranks_identical"] for c in equivalence)


def test_bad_arguments_raise_on_every_rank_before_training():
    done = mpiexec(sys.executable, str(HERE / "mpi" / "faults.py"), "arguments", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout   # the two ranks' lines may interleave: find each by its prefix

    def report(name, rank):
        start = out.index(f"{name}: rank {rank}: ")
        return out[start:out.index("]", start) + 1]

    expected = {"NaN on rank 1": ("ValueError", "X contains NaN"),
                "rows differ": ("ValueError", "the same X shape"),
                "batch sizes differ": ("ValueError", "the same batch_size"),
                "BatchNorm": ("ValueError", "BatchNorm and Dropout are not supported"),
                "not a communicator": ("TypeError", "mpi4py intracommunicator")}
    for name, (kind, words) in expected.items():
        for rank in (0, 1):
            line = report(name, rank)
            assert f"{kind}: " in line and words in line and "[params unchanged: True]" in line
    assert report("NaN on rank 1", 0).startswith(
        "NaN on rank 1: rank 0: ValueError: rank 1: X contains NaN")


@pytest.mark.parametrize("mode, error", [
    ("raise", "RuntimeError: a callback failed on purpose"),
    ("raise-mid-epoch", "RuntimeError: a step failed on purpose"),
])
def test_an_exception_on_one_rank_ends_the_whole_job_within_seconds(mode, error):
    # the network and optimizer of faults.py: compile (or load) them before timing
    warm = mpiexec(sys.executable, str(HERE / "mpi" / "faults.py"), "arguments", timeout=300)
    assert warm.returncode == 0, warm.stderr[-3000:]
    began = time.perf_counter()
    done = mpiexec(sys.executable, str(HERE / "mpi" / "faults.py"), mode, timeout=300)
    elapsed = time.perf_counter() - began
    assert done.returncode != 0
    assert f"fastnn: rank 1 of 2 failed, aborting the job: {error}" in done.stderr
    assert "training ended normally" not in done.stdout
    assert elapsed < 60, elapsed   # includes starting two interpreters and compiling


def test_mpiexec_fastnn_train_bike_trains_data_parallel(tmp_path):
    done = subprocess.run(
        [MPIEXEC, "-n", "2", os.path.join(os.path.dirname(sys.executable), "fastnn"), "train",
         "bike", "--epochs", "2", "--save", str(tmp_path / "bike.fnn")],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert out.count("data-parallel over 2 MPI processes") == 1   # rank 0 prints alone
    assert out.count("epoch 2/2") == 1 and out.count("saved the model to") == 1
    model = fastnn.load(tmp_path / "bike.fnn")
    assert np.isfinite(model.params).all()


def test_a_plain_run_never_imports_mpi4py():
    code = ("import sys, numpy as np, fastnn\n"
            "m = fastnn.Sequential([fastnn.Dense(3, 2)], seed=0)\n"
            "m.fit(np.ones((8, 3)), np.ones((8, 2)), verbose=0)\n"
            "from fastnn import cli, distributed\n"
            "assert distributed.launched_under_mpi() == 1 and cli._mpi_world() is None\n"
            "print('mpi4py' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k not in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_fit_refuses_a_non_communicator_in_one_process():
    model = fastnn.Sequential([fastnn.Dense(3, 2)], seed=0)
    before = model.params.copy()
    with pytest.raises(TypeError, match="comm must be an mpi4py intracommunicator"):
        model.fit(np.ones((8, 3)), np.ones((8, 2)), comm=object(), verbose=0)
    assert np.array_equal(model.params, before)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_communicator_of_one_process_trains_as_a_plain_fit(dtype):
    from mpi4py import MPI

    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((97, 5)), rng.integers(0, 3, 97)

    def fit(**comm):
        model = fastnn.Sequential([fastnn.Dense(5, 8, "relu"), fastnn.Dense(8, 3, "softmax")],
                                  loss="categorical_crossentropy", dtype=dtype, seed=2)
        history = model.fit(X, y, epochs=2, batch_size=16, verbose=0, **comm)
        return model.params, history.history["loss"]

    params, losses = fit(comm=MPI.COMM_SELF)
    expected_params, expected_losses = fit()
    np.testing.assert_array_equal(params, expected_params)
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-12)
