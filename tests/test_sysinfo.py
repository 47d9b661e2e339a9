import json
import subprocess
import sys

from fastnn import sysinfo


def test_collect_reports_versions_pools_and_cpu():
    info = sysinfo.collect()
    for key in ("numpy", "scipy", "numba", "cpu", "blas", "numba_threading_layer"):
        assert info[key] not in (None, "")
    assert any("scipy_openblas" in p["library"] or p["api"] == "blas" for p in info["blas"])
    from fastnn.kernels import _crossover as crossover
    assert info["matmul_loops_limits"] == {"dot": crossover.DOT_FORM_LIMIT,
                                           "outer": crossover.OUTER_FORM_LIMIT}


def test_warns_when_openblas_is_pinned_below_the_cpu(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    pools = [{"library": "libopenblas.so", "core_type": "Haswell"}]
    (warning,) = sysinfo.pinned_below_cpu(pools, ["avx", "avx2", "avx512f"])
    assert "OPENBLAS_CORETYPE=Haswell" in warning and "avx512f" in warning
    assert sysinfo.pinned_below_cpu(pools, ["avx", "avx2"]) == []
    assert sysinfo.pinned_below_cpu([{"library": "x", "core_type": "SkylakeX"}],
                                    ["avx2", "avx512f"]) == []


def test_cli_info_json():
    out = subprocess.run([sys.executable, "-m", "fastnn", "info", "--json"], check=True,
                         capture_output=True, text=True).stdout
    assert json.loads(out)["numba"]
