"""Compile fastnn's CUDA kernels to PTX for a real GPU, on a machine without one: what the
CUDA simulator cannot check (it runs kernels as Python, so a NumPy ufunc that does not
compile for the device — np.sign, np.sqrt — passes there and fails on a GPU).

Two steps, two environments:

    NUMBA_ENABLE_CUDASIM=1 python scripts/cuda_ptx.py capture kernels.json
        runs fastnn's GPU paths on the simulator (the twins' check of scripts/gpu_bench.py,
        every optimizer among them, and fits of Sequential(device="cuda") with the
        remedies, every loss, float32 and float64) and records each kernel launched with
        its argument types;
    python scripts/cuda_ptx.py compile kernels.json [--cc 9.0]
        in an environment with numba-cuda and NVIDIA's compiler from pip (``pip install
        "numba-cuda[cu12]"``; no driver needed), compiles each recorded kernel for those
        argument types to PTX for compute capability ``--cc`` (9.0: H100/H200). numba-cuda
        asks the current device for its compute capability when it compiles a device
        function; this script answers for it. Exit status 1 if any kernel fails.
"""
import argparse
import importlib
import json
import os
import sys
import types

SCRIPTS = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------- argument types

def describe(value):
    """A JSON description of a kernel argument's type (arrays by dtype, rank, layout)."""
    array = getattr(value, "_ary", value)       # the simulator's device arrays wrap NumPy's
    if hasattr(array, "dtype") and hasattr(array, "ndim") and array.ndim > 0:
        layout = "C" if array.flags.c_contiguous else "F" if array.flags.f_contiguous else "A"
        return {"array": array.dtype.str, "ndim": array.ndim, "layout": layout}
    if hasattr(value, "_ary"):                  # a wrapped 0-d array or record
        raise TypeError(f"unsupported device argument {type(value).__name__}")
    if value is None:
        return {"none": True}
    if isinstance(value, bool):
        return {"python": "bool"}
    if isinstance(value, int):
        return {"python": "int"}
    if isinstance(value, float):
        return {"python": "float"}
    if hasattr(value, "dtype"):                 # a NumPy scalar
        return {"scalar": value.dtype.str}
    if isinstance(value, tuple):
        items = [describe(v) for v in value]
        if hasattr(value, "_fields"):
            cls = type(value)
            return {"namedtuple": f"{cls.__module__}:{cls.__qualname__}", "items": items}
        return {"tuple": items}
    raise TypeError(f"unsupported argument {type(value).__name__}")


def rebuild(desc):
    """A value whose Numba type is the one ``desc`` describes."""
    import numpy as np

    if "array" in desc:
        shape = (2,) * desc["ndim"]
        if desc["layout"] == "F":
            return np.zeros((2, 3) + shape[2:], dtype=desc["array"], order="F")
        if desc["layout"] == "A":
            return np.zeros((4,) + shape[1:], dtype=desc["array"])[::2]
        return np.zeros(shape, dtype=desc["array"])
    if "none" in desc:
        return None
    if "python" in desc:
        return {"bool": True, "int": 1, "float": 1.0}[desc["python"]]
    if "scalar" in desc:
        return np.dtype(desc["scalar"]).type(1)
    if "tuple" in desc:
        return tuple(rebuild(d) for d in desc["tuple"])
    module, name = desc["namedtuple"].split(":")
    cls = getattr(importlib.import_module(module), name)
    return cls(*(rebuild(d) for d in desc["items"]))


# ---------------------------------------------------------------------- capture

def _closure(fn):
    """A kernel made by a factory: the values it closes over, by name (numbers, and types
    by name), from which ``_kernel`` calls the factory again."""
    cells = zip(fn.__code__.co_freevars, fn.__closure__ or ())
    return {name: cell.cell_contents if isinstance(cell.cell_contents, (int, float, str))
            else str(cell.cell_contents) for name, cell in cells}


def capture(path):
    """Run fastnn's GPU paths on the simulator; write each kernel and argument types."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        raise SystemExit("capture runs on the simulator: NUMBA_ENABLE_CUDASIM=1")
    import numpy as np
    from numba.cuda.simulator.kernel import FakeCUDAKernel

    import fastnn

    seen = {}
    launch = FakeCUDAKernel.__call__

    def recording(self, *args):
        if not self._device:
            key = (self.fn.__module__, self.fn.__qualname__, _closure(self.fn))
            signature = [describe(a) for a in args]
            seen.setdefault(json.dumps([key, signature]), (key, signature))
        return launch(self, *args)

    FakeCUDAKernel.__call__ = recording
    sys.path.insert(0, SCRIPTS)
    import gpu_bench

    gpu_bench.main(["--check-only", "--check-size", "9", "7"])
    rng = np.random.default_rng(0)
    X = rng.standard_normal((24, 5))
    labels = rng.integers(0, 3, 24)
    for dtype in ("float32", "float64"):
        for loss, out, y in (("mse", None, X[:, 0]),
                             ("categorical_crossentropy", "softmax", labels),
                             ("binary_crossentropy", "sigmoid", (labels > 0).astype(float))):
            width = 3 if out == "softmax" else 1
            remedies = [fastnn.Dropout(0.1), fastnn.Dense(5, 6), fastnn.BatchNorm(6),
                        fastnn.Activation("tanh"), fastnn.Dense(6, width, out)]
            plain = [fastnn.Dense(5, 6, "relu", l1=1e-3, l2=1e-3), fastnn.Dense(6, width, out)]
            # every optimizer's kernels are in gpu_bench's check; two here, in the loop
            for layers, optimizer in ((remedies, fastnn.AdamW()), (plain, fastnn.Lamb())):
                model = fastnn.Sequential(layers, loss=loss, dtype=dtype, seed=0,
                                          device="cuda")
                model.fit(X, y, epochs=1, batch_size=8, optimizer=optimizer, verbose=0,
                          clip_norm=1.0, clip_value=0.5, validation_data=(X, y))
                model.predict(X)
    FakeCUDAKernel.__call__ = launch
    records = [{"module": m, "kernel": k, "closure": c, "arguments": sig}
               for (m, k, c), sig in seen.values()]
    with open(path, "w") as f:
        json.dump(records, f, indent=1)
    print(f"{len(records)} kernel launches of {len({r['kernel'] for r in records})} kernels "
          f"recorded in {path}")
    return 0


# ---------------------------------------------------------------------- compile

def _kernel(module, name, closure):
    """The dispatcher recorded as ``module``:``name``: a module's kernel, a rule's (made by
    kernels.cuda._optimizers._kernels), or one a factory made (matmul's product kernel,
    per tile and dtype: called again with the values it closed over)."""
    namespace = importlib.import_module(module)
    if ".<locals>." in name:
        factory = getattr(namespace, name.split(".<locals>.")[0])
        values = dict(closure, dtype=closure.get("element"))
        parameters = factory.__code__.co_varnames[:factory.__code__.co_argcount]
        return factory(*(values[p] for p in parameters))
    if hasattr(namespace, name):
        return getattr(namespace, name)
    from fastnn.kernels.optimizer_rules import RULES

    rule = name.removesuffix("_step_kernel").removesuffix("_kernel")
    code = [r.name for r in RULES].index(rule)
    return namespace._kernels(code)[1 if name.endswith("_step_kernel") else 0]


def compile_all(path, cc):
    """Compile each recorded kernel to PTX; returns the number that failed."""
    try:
        import numba.cuda.dispatcher as dispatcher
        from numba import cuda, typeof
    except ImportError as exc:
        raise SystemExit(f"needs numba-cuda: pip install 'numba-cuda[cu12]' ({exc})")
    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=cc)
    with open(path) as f:
        records = json.load(f)
    failures = 0
    for record in records:
        name = f"{record['module'].rpartition('.')[2]}.{record['kernel']}"
        try:
            kernel = _kernel(record["module"], record["kernel"], record["closure"])
            signature = tuple(typeof(rebuild(d)) for d in record["arguments"])
            ptx, _ = cuda.compile_ptx(kernel.py_func, signature, cc=cc)
        except Exception as exc:    # noqa: BLE001 - report every kernel's failure
            failures += 1
            print(f"FAILED {name}: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}")
        else:
            print(f"ok     {name}: {len(ptx)} characters of PTX")
    print(f"{len(records) - failures} of {len(records)} kernel signatures compile for "
          f"sm_{cc[0]}{cc[1]}")
    return failures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    sub.add_parser("capture").add_argument("path")
    compiling = sub.add_parser("compile")
    compiling.add_argument("path")
    compiling.add_argument("--cc", default="9.0", help="compute capability (9.0)")
    args = parser.parse_args(argv)
    if args.step == "capture":
        return capture(args.path)
    cc = tuple(int(part) for part in args.cc.split("."))
    return 1 if compile_all(args.path, cc) else 0


if __name__ == "__main__":
    sys.exit(main())
