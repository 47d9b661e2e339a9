"""Runs the CUDA kernel tests (tests/cuda) on the CUDA simulator, in their own process:
NUMBA_ENABLE_CUDASIM must be set before Numba is imported."""
import os
import re
import subprocess
import sys

import pytest


CUDA_TESTS = os.path.join(os.path.dirname(__file__), "cuda")


@pytest.mark.parametrize("module", sorted(f for f in os.listdir(CUDA_TESTS)
                                          if f.startswith("test_") and f.endswith(".py")))
def test_cuda_kernels_on_the_simulator(module):
    """One process per module of tests/cuda (so that pytest -n spreads them)."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    run = subprocess.run([sys.executable, "-m", "pytest", os.path.join(CUDA_TESTS, module), "-q",
                          "-p", "no:cacheprovider", "-p", "no:xdist"],
                         env=env, capture_output=True, text=True)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed >= 10 and "skipped" not in summary, summary


def test_import_fastnn_does_not_import_cuda():
    code = "import sys, fastnn; print(any(m.startswith('numba.cuda') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_asking_for_the_gpu_without_cuda_says_how_to_get_it(monkeypatch):
    import fastnn
    from fastnn.kernels.cuda import _backend as backend

    monkeypatch.setattr(backend, "available", lambda: False)
    with pytest.raises(RuntimeError, match=r"pip install -e '\.\[cuda\]'.*NUMBA_ENABLE_CUDASIM"):
        fastnn.Sequential([fastnn.Dense(2, 1)], device="cuda")

