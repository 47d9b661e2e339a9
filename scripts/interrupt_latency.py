"""How long Ctrl-C takes to stop ``fit`` during a long epoch: a child process trains on
synthetic data (an epoch of several seconds), receives SIGINT mid-epoch, and reports
when fit returned; with ``--whole-epochs`` the epoch runs as one compiled call (as in
0.1), for comparison.

    python scripts/interrupt_latency.py [--after 3] [--rounds 3]
"""
import argparse
import json
import signal
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time
import numpy as np
import fastnn
from fastnn import epochs
if sys.argv[1] == "whole":
    class Whole(epochs.ChunkSizer):
        def __init__(self):
            self.steps = 10 ** 9
        def record(self, steps, elapsed):
            pass
    epochs.ChunkSizer = Whole
rng = np.random.default_rng(0)
X = rng.standard_normal((400_000, 64), dtype=np.float32)
y = X[:, :4].sum(axis=1)
model = fastnn.Sequential([fastnn.Dense(64, 256, activation="relu"),
                           fastnn.Dense(256, 256, activation="relu"), fastnn.Dense(256, 1)], seed=0)
model.fit(X[:256], y[:256], epochs=1, verbose=0)   # compile first
print("ready", flush=True)
history = model.fit(X, y, epochs=3, batch_size=64, verbose=0)
returned = time.time()
finite = bool(np.isfinite(model.predict(X[:100])).all())
print(json.dumps({"returned": returned, "interrupted": history.interrupted,
                  "epochs": len(history.epoch), "finite": finite}), flush=True)
"""


def once(mode, after):
    child = subprocess.Popen([sys.executable, "-c", CHILD, mode], stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout.readline().strip() == "ready"
    time.sleep(after)
    sent = time.time()
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=120)
    if child.returncode != 0:   # the interrupt escaped fit: no report
        return {"latency": time.time() - sent, "interrupted": None, "exit": child.returncode}
    report = json.loads(out.strip().splitlines()[-1])
    report["latency"] = report["returned"] - sent
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--after", type=float, default=3.0, help="seconds into the fit")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    for mode in ("chunked", "whole"):
        for _ in range(args.rounds):
            r = once(mode, args.after)
            print(f"{mode:<8} Ctrl-C to fit's return {r['latency']:.3f} s  "
                  f"interrupted={r['interrupted']}  " +
                  (f"epochs recorded={r['epochs']}  finite predictions={r['finite']}"
                   if r["interrupted"] is not None else f"exit status {r['exit']}"))


if __name__ == "__main__":
    main()
