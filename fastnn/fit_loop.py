"""``Sequential.fit``'s one loop, whatever the hardware: epochs as compiled chunks of
about 0.2 s (fastnn.epochs), Ctrl-C at the next step boundary, the in-epoch progress
line, validation, callbacks, early stopping and the History. It drives an engine
(fastnn.engines: the CPU, alone or with MPI processes; fastnn.device: a GPU), chosen
here once from the model's device and ``comm``."""
import contextlib
import math
import time

import numpy as np

from fastnn.callbacks import Callback
from fastnn.compile_notice import announcing, flush as say_compile_time
from fastnn.engines import EVAL_CHUNK, CpuEngine, OneProcess
from fastnn.epochs import EpochRun, Interrupt, Progress, epoch_order
from fastnn.fit_config import fit_config
from fastnn.history import History


def fit(model, X, y, options):
    """``model.fit(X, y, **options)`` (``options``: all of fit's keyword arguments): the
    arguments checked (on every process of a data-parallel fit, which must agree), the
    engine chosen, the epochs run; the History. A compile says so (on stderr too with
    ``verbose``, from rank 0 of a data-parallel fit)."""
    comm = options["comm"]
    echo = bool(options["verbose"]) and (comm is None or
                                         getattr(comm, "Get_rank", lambda: 0)() == 0)
    with announcing(echo=echo):
        return _fit(model, X, y, options)


def _fit(model, X, y, options):
    comm = options["comm"]
    if comm is not None:
        from fastnn import distributed

        comm = distributed.check_comm(comm)
    try:
        config = fit_config(model, X, y, options)
    except (TypeError, ValueError) as error:
        if comm is not None:
            distributed.agree(comm, error, {})
        raise
    if comm is not None:
        distributed.agree(comm, None, {**config.facts, "network": repr(model),
                                       "seed": options["seed"]})
    for cb in config.callbacks:
        if isinstance(cb, Callback):
            cb.on_train_begin(model, config.optimizer, config.val is not None)
    model.optimizer = config.optimizer
    rank = 0 if comm is None else comm.Get_rank()
    if rank:
        config.verbose = 0
    with Interrupt() as interrupt, _rank_of(model, rank), \
            (contextlib.nullcontext() if comm is None else distributed.abort_on_error(comm)):
        run = EpochRun(interrupt, Progress(config.verbose == 1))
        return run_epochs(model, config, _engine(model, config), run)


def _engine(model, config):
    """The engine of this fit: the only place the device and ``comm`` decide anything."""
    if model.device == "cuda":
        from fastnn.device import CudaEngine

        return CudaEngine(model, config, EVAL_CHUNK)
    if config.comm is not None:
        from fastnn.distributed import Processes

        return CpuEngine(model, config, Processes(config.comm))
    return CpuEngine(model, config, OneProcess())


def run_epochs(model, config, engine, run):
    """The epochs of a fit on ``engine``, each recorded in the returned History."""
    history = History()
    best = (model.params.copy(), model.stats.copy()) if config.early_stopping else None
    best_loss, since_best = math.inf, 0
    perm = np.arange(config.X.shape[0], dtype=np.int64)
    started = time.perf_counter()
    try:
        for epoch in range(config.epochs):
            if engine.agree(0, run.stopped)[1]:
                run.interrupt.requested = True
                break
            epoch_order(perm, config.shuffle, config.rng)
            engine.new_epoch(perm)
            done = _epoch(config, engine, run, epoch)
            logs = _logs(model, config, engine, epoch, done)
            logs["time"], started = time.perf_counter() - started, time.perf_counter()
            history.append(epoch, logs)
            run.progress.clear()
            say_compile_time()
            if done < config.X.shape[0]:
                history.interrupted = True
                if config.verbose:
                    print(f"epoch {epoch + 1}/{config.epochs} interrupted after {done} of "
                          f"{config.X.shape[0]} samples  loss {logs['loss']:.4f}  "
                          f"({logs['time']:.2f} s)", flush=True)
                break
            if config.verbose:
                shown = "  ".join(f"{k} {v:.4g}" if k == "lr" else f"{k} {v:.4f}"
                                  for k, v in logs.items() if k != "time")
                print(f"epoch {epoch + 1}/{config.epochs}  {shown}  ({logs['time']:.2f} s)",
                      flush=True)
            if any(getattr(cb, "needs_host_state", False) for cb in config.callbacks):
                engine.sync()
            stop = any([bool(cb(epoch, logs)) for cb in config.callbacks])
            if config.early_stopping is not None:
                if logs["val_loss"] < best_loss:
                    best_loss, since_best, history.best_epoch = logs["val_loss"], 0, epoch
                    engine.copy_state(*best)
                else:
                    since_best += 1
                    stop = stop or since_best >= config.early_stopping
            if stop or run.stopped:
                history.interrupted = history.interrupted or run.stopped
                break
    finally:
        engine.close()
    if best is not None:
        np.copyto(model.params, best[0])
        np.copyto(model.stats, best[1])
    return history


def _epoch(config, engine, run, epoch):
    """One epoch's chunks on ``engine``: the samples trained on (fewer than all after
    Ctrl-C, at a chunk boundary)."""
    n, batch_size = config.X.shape[0], config.batch_size
    steps_total = -(-n // batch_size)
    done, began = 0, time.perf_counter()
    while done < n:
        steps, stopped = engine.agree(engine.chunk_steps(run.sizer.steps), run.stopped)
        if stopped:
            run.interrupt.requested = True
            break
        stop = min(n, done + steps * batch_size)
        chunk_began = time.perf_counter()
        engine.train(done, stop)
        now = time.perf_counter()
        ran = -(-(stop - done) // batch_size)
        run.sizer.record(ran, now - chunk_began)
        engine.measured(ran, now - chunk_began)
        done = stop
        run.progress.update(f"epoch {epoch + 1}/{config.epochs}", -(-done // batch_size),
                            steps_total, done, now - began)
    return done


def _logs(model, config, engine, epoch, done):
    """The epoch's metrics: loss (and accuracy), their validation twins (NaN for an epoch
    cut short, which is not validated), the learning rate in force."""
    total, correct = engine.epoch_sums()
    logs = model._metrics(total, correct, done)
    if not math.isfinite(logs["loss"]):
        raise FloatingPointError(f"training diverged in epoch {epoch + 1}: the loss is "
                                 f"{logs['loss']}; lower the learning rate")
    if config.val is not None:
        complete = done == config.X.shape[0]
        weights = config.val[2]
        measured = model._metrics(*engine.validate(), config.val[0].shape[0],
                                  None if weights is None else weights.sum()) if complete \
            else dict.fromkeys(logs, math.nan)
        logs.update({"val_" + key: value for key, value in measured.items()})
    logs["lr"] = config.optimizer.current_lr()
    return logs


@contextlib.contextmanager
def _rank_of(model, rank):
    """``model._rank`` is ``rank`` inside (Checkpoint writes from rank 0 only)."""
    model._rank = rank
    try:
        yield
    finally:
        model._rank = 0
