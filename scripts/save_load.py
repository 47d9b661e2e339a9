"""model.save and fastnn.load of a workload's model (with Adam state) against np.save and
np.load of the same bytes, medians of repeated runs in one process, interleaved.

Two cases of saving, as the previous file's state changes what a save costs:
- "over a saved file": each save replaces a file whose blocks
  are on disk, as every save of a training run does once the kernel has written the
  previous one back (at most 30 s after it) — both model.save and np.save then pay for
  freeing the old file's blocks (~15 ms for 76 MB on ext4);
- "to a new file": no previous file; model.save's fsync writes every byte to disk
  while np.save only copies them into the page cache, so the ratio is at least the
  disk's write time over a memory copy's.

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


def _on_disk(path):
    """Have the file's blocks written and allocated, as they are some seconds after any
    save."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _absent(path):
    if os.path.exists(path):
        os.unlink(path)


def measure(workload="wide", repeat=9):
    import fastnn

    model = model_with_state(workload)
    same_bytes = np.concatenate([model.params, model.stats, model.optimizer.state.ravel()])
    folder = tempfile.mkdtemp()
    path, npy = os.path.join(folder, "model.fnn"), os.path.join(folder, "same.npy")
    fnn_new, npy_new = os.path.join(folder, "new.fnn"), os.path.join(folder, "new.npy")
    model.save(path)
    np.save(npy, same_bytes)
    cases = {   # name: (untimed preparation, timed call)
        "model.save": (lambda: None, lambda: model.save(path)),
        "np.save": (lambda: _on_disk(npy), lambda: np.save(npy, same_bytes)),
        "np.save + fsync": (lambda: None, lambda: _np_save_fsync(npy, same_bytes)),
        "fastnn.load": (lambda: None, lambda: fastnn.load(path)),
        "np.load": (lambda: None, lambda: np.load(npy)),
        "model.save, new file": (lambda: _absent(fnn_new), lambda: model.save(fnn_new)),
        "np.save, new file": (lambda: _absent(npy_new), lambda: np.save(npy_new, same_bytes)),
    }
    times = {name: [] for name in cases}
    for _ in range(repeat):              # interleaved: drift hits every case alike
        for name, (prepare, run) in cases.items():
            prepare()
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
        base = "np.save, new file" if name.endswith("new file") else "np.save"
        print(f"  {name:<22}{t * 1e3:8.1f} ms  {t / median[base]:5.2f}x {base}")


if __name__ == "__main__":
    main()
