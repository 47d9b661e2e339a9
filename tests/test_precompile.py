"""``fastnn compile``: which configurations it compiles, and that what it compiled is
what a later fit of such a configuration loads (no compile in a fresh process)."""
import json
import os
import subprocess
import sys
import textwrap

import fastnn
from fastnn.kernels._layout import planned_for
from fastnn.kernels._optimizers import KERNEL_OF
from fastnn.kernels._passes import pass_plan
from fastnn.precompile import LOSSES, OPTIMIZERS, REMEDIES, configurations


def _plans():
    found = []
    for label, build, options in configurations():
        model = build()
        net = planned_for(model.net, options["batch_size"], training=True)
        optimizer = options["optimizer"](1e-3)
        found.append((label, model, net.plan, optimizer.code, options.get("clip_norm")))
    return found


def test_every_plan_loss_remedy_optimizer_and_dtype_is_compiled():
    plans = _plans()
    seen = {(model.dtype.__name__, plan.split, plan.parallel, model.loss_name, plan.norm,
             plan.dropout) for _, model, plan, _, _ in plans}
    for dtype in ("float32", "float64"):
        for loss in LOSSES:
            for norm, rate in REMEDIES.values():
                for parallel in (False, True):
                    assert (dtype, False, parallel, loss, norm, rate > 0) in seen
            assert (dtype, True, False, loss, False, False) in seen     # split
    updates = {(model.dtype.__name__, plan.parallel, code, clip)
               for _, model, plan, code, clip in plans}
    codes = {getattr(fastnn, name)(1e-3).code for name in OPTIMIZERS}
    # one optimizer of each compiled pass: every other runs the pass of one of these
    assert {KERNEL_OF[code] for code in fastnn.kernels.OPTIMIZERS.values()} == codes
    assert "Adam" in OPTIMIZERS and "AdamW" not in OPTIMIZERS
    assert len(updates) == 2 * 2 * len(OPTIMIZERS) * 2
    # every pass plan (BatchNorm, Dropout, parallel) of both dtypes
    assert len({(model.dtype.__name__, type(pass_plan(plan)))
                for _, model, plan, _, _ in plans}) == 16


SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import fastnn
    from numba.core import event

    compiled = []
    class Count(event.Listener):
        def on_start(self, ev): compiled.append(ev.data["dispatcher"].py_func.__qualname__)
        def on_end(self, ev): pass

    if sys.argv[1] == "compile":
        import fastnn.precompile as ahead
        every = ahead.configurations
        ahead.configurations = lambda dtypes: [c for c in every(dtypes)
                                               if c[0] == "float64 serial mse BatchNorm"]
        lines = []
        fastnn.compile(("float64",), progress=lines.append)
        print(json.dumps(lines))
    else:
        event.register("numba:compile", Count())
        rng = np.random.default_rng(1)
        X, y = rng.standard_normal((500, 20)), rng.standard_normal(500)
        model = fastnn.Sequential([fastnn.Dense(20, 30), fastnn.BatchNorm(30),
                                   fastnn.Activation("tanh"), fastnn.Dense(30, 1)],
                                  dtype="float64", seed=0)
        model.fit(X, y, epochs=2, batch_size=50, optimizer=fastnn.Adam(1e-2),
                  validation_data=(X[:100], y[:100]), verbose=0)
        model.predict(X)
        print(json.dumps(compiled))
""")


def test_a_fit_after_fastnn_compile_compiles_nothing(tmp_path):
    """Another network of a compiled configuration (other sizes, activation, batch size,
    learning rate) in a fresh process: everything loads from the cache."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))

    def run(what):
        out = subprocess.run([sys.executable, "-c", SCRIPT, what], env=env, check=True,
                             capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    lines = run("compile")
    assert lines[0].startswith("compiling fastnn's kernels for 1 configurations into ")
    assert lines[1].startswith("[1/1] float64 serial mse BatchNorm: ")
    assert lines[-1].startswith("done in ")
    assert run("fit") == []
