"""The measuring tools behind the performance figures run and measure what they say."""
import numpy as np
import pytest

from fastnn.bench import breakdown, scaling
from fastnn.bench.workloads import WORKLOADS, build_model


def test_build_model_matches_the_workload():
    for w in WORKLOADS.values():
        model = build_model(w, "float64")
        assert model.sizes.tolist() == list(w.sizes) and model.dtype == np.float64
        assert model.is_classifier == (w.loss != "mse")


def test_breakdown_times_every_part():
    parts = breakdown.breakdown("bike", repeats=1)
    assert set(parts) == {"epoch", "products", "floor", "gather", "epilogues", "loss",
                          "delta + db", "count", "update"}
    assert all(us > 0 for us in parts.values())
    # the epoch contains every product and the update, so it takes longer than either
    assert parts["epoch"] > parts["update"] and parts["epoch"] > 0.5 * parts["floor"]


@pytest.mark.parametrize("threads,dtype", [(1, "float64"), (0, "float32")])
def test_scaling_trains_in_a_fresh_process_and_times_each_epoch(threads, dtype):
    times = scaling.fresh("bike", threads, dtype, epochs=2)
    assert len(times) == 2 and all(t > 0 for t in times)
