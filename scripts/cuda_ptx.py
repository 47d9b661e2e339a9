"""Compile every optimizer rule's CUDA kernels (kernels/cuda/_optimizers.py, made from the
registry kernels/optimizer_rules) to PTX for a real GPU, on a machine without one: what
the CUDA simulator cannot check (it runs the kernels as Python, so a NumPy ufunc that
does not compile for the device — np.sign, np.sqrt — passes there and fails on a GPU).

Needs numba-cuda and NVIDIA's compiler from pip (``pip install "numba-cuda[cu12]"``), not
a driver: numba-cuda asks the current device for its compute capability when it compiles
a device function, and this script answers for it (``--cc``, 9.0 by default: H100/H200).

    python scripts/cuda_ptx.py [--cc 8.0]
"""
import argparse
import sys
import types


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cc", default="9.0", help="compute capability (9.0)")
    args = parser.parse_args(argv)
    cc = tuple(int(part) for part in args.cc.split("."))
    try:
        import numba.cuda.dispatcher as dispatcher
        from numba import cuda
        from numba.core import types as nb
    except ImportError as exc:
        raise SystemExit(f"needs numba-cuda: pip install 'numba-cuda[cu12]' ({exc})")
    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=cc)

    from fastnn.kernels.cuda import _optimizers as gpu
    from fastnn.kernels.optimizer_rules import RULES

    def array(t):
        return nb.Array(t, 1, "C")

    f64, i64 = nb.float64, nb.int64
    failures = 0
    for code, rule in enumerate(RULES):
        update, step = gpu._kernels(code)
        hp = nb.UniTuple(f64, len(rule.hyperparameters))
        for dtype in (nb.float32, nb.float64):
            kernels = [(update, (array(dtype), array(dtype), array(dtype), array(dtype),
                                 array(f64), i64, hp, array(i64), array(f64), array(f64),
                                 array(f64), f64, nb.boolean, f64, f64, array(f64)))]
            if step is not None:
                kernels.append((step, (array(dtype), array(dtype), array(dtype), array(f64),
                                       i64, hp, array(i64), array(f64), array(f64))))
            for kernel, signature in kernels:
                name = f"{kernel.py_func.__qualname__}[{dtype}]"
                try:
                    ptx, _ = cuda.compile_ptx(kernel.py_func, signature, cc=cc)
                except Exception as exc:    # noqa: BLE001 - report every kernel's failure
                    failures += 1
                    print(f"FAILED {name}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
                else:
                    print(f"ok     {name}: {len(ptx)} characters of PTX for sm_{cc[0]}{cc[1]}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
