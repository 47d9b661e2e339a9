"""``fastnn bench`` / ``scripts/compare.py``: the head-to-head comparison of fastnn, the GEMM
floor and its peers on the reference workloads (``DESCRIPTION`` says how it measures).
"""
import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys

from fastnn.atomic_file import atomic_write
from fastnn.bench.contenders import CONTENDERS, REQUIRES
from fastnn.bench.workloads import WORKLOADS


def run_one(name, workload, epochs, env):
    out = subprocess.run([sys.executable, "-m", "fastnn.bench.contenders", name, workload,
                          str(epochs)], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def environment(pinned):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    if pinned:
        env["OPENBLAS_CORETYPE"] = pinned
    return env


def measure(workloads, contenders, rounds, epochs, env, log=print):
    """results[workload][contender] = list over rounds of the best epoch's ms/step."""
    results = {w: {c: [] for c in contenders} for w in workloads}
    meta = {}
    for r in range(rounds):
        for w in workloads:
            order = contenders if r % 2 == 0 else contenders[::-1]
            for c in order:
                res = run_one(c, w, epochs, env)
                if "error" in res:
                    log(f"  {w} {c}: {res['error']}")
                    continue
                results[w][c].append(min(res["epoch_s"]) / res["steps"] * 1e3)
                meta.setdefault(c, res["pools"])
        log(f"round {r + 1}/{rounds} done")
    return results, meta


def table(results, title):
    width = max([len("workload")] + [len(w) for w in results]) + 2
    lines = [title, f"{'workload':<{width}}{'contender':<10}{'ms/step':>10}{'spread':>22}"
                    f"{'/ floor':>9}{'/ fastnn':>10}"]
    for w, per in results.items():
        med = {c: statistics.median(v) for c, v in per.items() if v}
        for c, value in med.items():
            spread = f"{min(per[c]):.4f} - {max(per[c]):.4f}"
            floor = value / med["floor"] if "floor" in med else float("nan")
            rel = value / med["fastnn"] if "fastnn" in med else float("nan")
            lines.append(f"{w:<{width}}{c:<10}{value:>10.4f}{spread:>22}{floor:>9.2f}"
                         f"{rel:>10.2f}")
    return "\n".join(lines)


DESCRIPTION = """fastnn against the GEMM floor (the step's matrix products alone) and its
peers: JAX (a whole epoch in one jit-compiled lax.scan), PyTorch eager with fused Adam,
plain NumPy and scikit-learn's MLP (these two not on the regularized workload). Each
contender runs in its own fresh process, rounds alternate between contenders, and the
table gives medians and spread over rounds and ratios taken in the same run. Peers that
are not installed are skipped (pip install -e '.[bench]' installs them).
OPENBLAS_CORETYPE is removed from every contender's environment, as on a user's machine,
unless --pinned is given. fastnn bench --sklearn compares scikit-learn's MLP with
fastnn's estimators instead (fastnn bench --sklearn --help)."""


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastnn bench", description=DESCRIPTION)
    parser.add_argument("--workloads", default="bike,mnist,mnist-regularized,wide",
                        help="comma-separated, from: " + ", ".join(
                            f"{w.name} ({'-'.join(map(str, w.sizes))}, batch {w.batch})"
                            for w in WORKLOADS.values()))
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help="comma-separated, from: " + ", ".join(CONTENDERS))
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every contender (3)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per process (3)")
    parser.add_argument("--pinned", nargs="?", const="Haswell", default=None,
                        help="also run with OPENBLAS_CORETYPE set (default Haswell)")
    parser.add_argument("--json", default="bench-results.json",
                        help="where to save the results (bench-results.json)")
    args = parser.parse_args(argv)
    workloads = [w for w in args.workloads.split(",") if w]
    contenders = [c for c in args.contenders.split(",")
                  if c not in REQUIRES or importlib.util.find_spec(REQUIRES[c])]
    skipped = sorted(set(args.contenders.split(",")) - set(contenders))
    from fastnn import sysinfo

    info = sysinfo.collect()
    print(f"CPU: {info['cpu']} ({info['cores']} cores; {' '.join(info['vector_extensions'])})")
    if skipped:
        print(f"skipped (not installed): {', '.join(skipped)}")
    saved = {"machine": info, "runs": {}}
    settings = [("own CPU detection (OPENBLAS_CORETYPE unset)", None)]
    if args.pinned:
        settings.append((f"OPENBLAS_CORETYPE={args.pinned}", args.pinned))
    for title, pinned in settings:
        results, meta = measure(workloads, contenders, args.rounds, args.epochs,
                                environment(pinned))
        print(table(results, f"\n{title}: median over {args.rounds} rounds of each process's "
                             f"best epoch"))
        for c, pools in meta.items():
            print(f"  {c}: " + "; ".join(f"{p['library']} {p['core_type']} x{p['threads']}"
                                         for p in pools))
        saved["runs"][title] = {"ms_per_step": results, "pools": meta}
    with atomic_write(args.json, what="the results") as f:
        f.write(json.dumps(saved, indent=1).encode())
    print(f"\nsaved {args.json}")
    return 0
