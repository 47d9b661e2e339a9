"""CUDA kernel tests run only on the CUDA simulator, in their own process
(tests/test_cuda_simulator.py starts it): NUMBA_ENABLE_CUDASIM must be set before
Numba is imported, which a plain pytest run has already done."""
import os

import pytest


def pytest_ignore_collect(collection_path, config):
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") in ("", "0")


@pytest.fixture(autouse=True, scope="session")
def tiny_blocks():
    """Small tiles and blocks, so that the tiny shapes still span several blocks."""
    from fastnn.kernels.cuda import configure

    configure(tile=4, threads=8, block_2d=4)
