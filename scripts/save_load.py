"""model.save and fastnn.load of a workload's model (with Adam state) against np.save and
np.load of the same bytes, medians of repeated runs in one process.

    python scripts/save_load.py              # the wide workload: 8.5 M parameters
    python scripts/save_load.py --workload mnist --repeat 20
"""
import argparse
import os
import statistics
import tempfile
import time

import numpy as np


def model_with_state(workload):
    """The workload's model with an Adam optimizer bound and random state."""
    import fastnn
    from fastnn.bench.workloads import WORKLOADS, build_model

    model = build_model(WORKLOADS[workload])
    model.optimizer = fastnn.Adam()
    state = model.optimizer.bind(model)
    state[...] = np.random.default_rng(0).random(state.shape, dtype=np.float32)
    model.optimizer.steps = 1000
    return model


def _np_save_fsync(path, array):
    with open(path, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())


def measure(workload="wide", repeat=9):
    import fastnn

    model = model_with_state(workload)
    same_bytes = np.concatenate([model.params, model.stats, model.optimizer.state.ravel()])
    folder = tempfile.mkdtemp()
    path, npy = os.path.join(folder, "model.fnn"), os.path.join(folder, "same.npy")
    cases = {
        "model.save": lambda: model.save(path),
        "fastnn.load": lambda: fastnn.load(path),
        "np.save": lambda: np.save(npy, same_bytes),
        "np.save + fsync": lambda: _np_save_fsync(npy, same_bytes),
        "np.load": lambda: np.load(npy),
    }
    times = {name: [] for name in cases}
    for _ in range(repeat):              # interleaved: drift hits every case alike
        for name, run in cases.items():
            began = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - began)
    return same_bytes.nbytes, {name: statistics.median(t) for name, t in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="wide")
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args(argv)
    nbytes, median = measure(args.workload, args.repeat)
    print(f"{args.workload}: {nbytes / 1e6:.1f} MB (parameters, statistics, Adam state); "
          f"medians of {args.repeat}")
    for name, t in median.items():
        print(f"  {name:<16}{t * 1e3:8.1f} ms  {t / median['np.save']:5.2f}x np.save")


if __name__ == "__main__":
    main()
