"""The matmul crossovers: which limits a CPU, an OpenBLAS pin and an override give, the
rule scripts/crossover.py measures them by, and their place in the kernel cache stamp."""
import os
import subprocess
import sys

import pytest

from fastnn.kernels import _crossover as crossover


@pytest.mark.parametrize("avx512,coretype,expected", [
    (False, None, "avx2"),
    (False, "SkylakeX", "avx2"),  # a pin cannot add vector width the CPU lacks
    (True, None, "avx512"),
    (True, "", "avx512"),
    (True, "Haswell", "avx2"),
    (True, "zen", "avx2"),
    (True, "SKYLAKEX", "avx512"),
    (True, "cooperlake", "avx512"),
])
def test_blas_vector_class(avx512, coretype, expected):
    assert crossover.blas_vector_class(avx512, coretype) == expected


def test_select_follows_the_table_and_the_override():
    assert crossover.select(True, None, None) == crossover.CROSSOVERS["avx512"]
    assert crossover.select(True, "Haswell", None) == crossover.CROSSOVERS["avx2"]
    assert crossover.select(False, None, "0, 1000") == (0, 1000)
    assert crossover.CROSSOVERS["avx512"] < crossover.CROSSOVERS["avx2"]


@pytest.mark.parametrize("text", ["1000", "a,b", "1,2,3", "-1,5", "1.5,2"])
def test_bad_override_names_the_variable(text):
    with pytest.raises(ValueError, match=crossover.OVERRIDE):
        crossover.parse_override(text)


def _rows(forward, weights, inputs, sizes=(4, 8, 16, 32)):
    """Measured rows with the given loops/BLAS GF/s ratio per product and size."""
    ratios = {"forward": forward, "weights": weights, "inputs": inputs}
    return [(p, n, n, 10.0, 10.0 * ratios[p][i]) for p in ratios for i, n in enumerate(sizes)]


def test_measured_crossover_is_the_last_size_before_the_loops_fall_behind(script):
    crossovers = script("crossover").crossovers
    rows = _rows(forward=[2.0, 1.0, 0.96, 0.5], weights=[1.5, 1.3, 0.5, 2.0],
                 inputs=[0.9, 0.85, 2.0, 2.0])
    # forward: 0.96 is level (within 5%), 32 behind.
    # outer: weights and inputs together: 4 and 8 ahead, 16 behind (its 0.5 dominates);
    # 32, ahead again beyond the first loss, does not count.
    assert crossovers(rows) == {"dot": 16 ** 3, "outer": 8 ** 3}
    assert crossovers(_rows([0.5] * 4, [0.5] * 4, [0.5] * 4)) == {"dot": 0, "outer": 0}


def _fresh_import(env_update):
    env = dict(os.environ, **env_update)
    code = ("from fastnn.kernels import _crossover as crossover, _jit; "
            "print(crossover.DOT_FORM_LIMIT, crossover.OUTER_FORM_LIMIT, "
            "_jit.SOURCES_DIGEST.hex())")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env)


def test_override_sets_the_limits_and_changes_the_cache_stamp():
    default = _fresh_import({}).stdout.split()
    override = _fresh_import({crossover.OVERRIDE: "7,11"}).stdout.split()
    assert override[:2] == ["7", "11"]
    assert override[2] != default[2]


def test_bad_override_fails_at_import():
    result = _fresh_import({crossover.OVERRIDE: "fast"})
    assert result.returncode != 0
    assert crossover.OVERRIDE in result.stderr
