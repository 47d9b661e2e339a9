"""The ``fastnn`` command: ``train bike``, ``train PATH.csv``, ``predict``, ``info``,
``bench``. A malformed CSV file or an unusable model file ends the command with one
line naming the file (and row and column) and exit status 2."""
import argparse
import importlib
import os
import sys
import time

import numpy as np


def _one_line(exc):
    """An exception as one line; an OSError with its file name."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    return " ".join(str(exc).split())


def _r2(y, pred):
    """Coefficient of determination 1 - SSE / SST."""
    return 1.0 - float(np.sum((pred - y) ** 2)) / float(np.sum((y - y.mean()) ** 2))


def _mpi_world():
    """Under ``mpiexec -n k`` (k > 1): MPI's world communicator, each process given its
    share of the cores, and standard output silenced on every process but rank 0 (which
    alone saves). A plain run returns None without importing mpi4py."""
    from fastnn.distributed import launched_under_mpi

    if launched_under_mpi() == 1:
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        raise OSError(None, "launched by mpiexec, but data-parallel training needs "
                            "mpi4py: pip install mpi4py mpich, or pip install -e "
                            "'.[mpi]' in fastnn's checkout") from None
    import fastnn

    comm = MPI.COMM_WORLD
    local = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_size()
    fastnn.set_num_threads(max(1, (os.cpu_count() or 1) // local))
    if comm.Get_rank() != 0:
        sys.stdout = open(os.devnull, "w")
    print(f"data-parallel over {comm.Get_size()} MPI processes ({local} on this machine, "
          f"{fastnn.get_num_threads()} thread(s) each)")
    return comm


def train_bike(args):
    """Train the bike-sharing regressor and print its train / validation / test table."""
    import fastnn
    from fastnn.datasets import load_bike

    comm = _mpi_world()
    started = time.perf_counter()
    data = load_bike(dtype=args.dtype)
    model = fastnn.Sequential(_hidden_layers(data.X_train.shape[1], 1, args, None), loss="mse",
                              dtype=args.dtype, seed=args.seed)
    print(f"bike sharing: {len(data.y_train)} train / {len(data.y_val)} validation / "
          f"{len(data.y_test)} test hours, {data.X_train.shape[1]} features; {model}")
    history = model.fit(data.X_train, data.y_train, epochs=args.epochs,
                        batch_size=args.batch_size, optimizer=fastnn.Adam(lr=args.lr),
                        validation_data=(data.X_val, data.y_val), seed=args.seed,
                        verbose=0 if args.quiet else 1, early_stopping=args.patience or None,
                        comm=comm)
    if history.best_epoch is not None:
        print(f"kept the weights of epoch {history.best_epoch + 1} (lowest validation MSE)")
    print(f"\n{'split':<12}{'MSE':>10}{'R2':>10}   (standardized target)")
    results = {}
    for name, X, y in (("train", data.X_train, data.y_train),
                       ("validation", data.X_val, data.y_val),
                       ("test", data.X_test, data.y_test)):
        pred = model.predict(X)
        mse = model.evaluate(X, y)["loss"]
        results[name] = (mse, _r2(y.astype(np.float64), pred.astype(np.float64)))
        print(f"{name:<12}{mse:>10.4f}{results[name][1]:>10.4f}")
    if args.save and (comm is None or comm.Get_rank() == 0):
        model.save(args.save)
        print(f"saved the model to {args.save}")
    print(f"\ntrained {len(history.epoch)} epochs in {sum(history.history['time']):.2f} s; "
          f"{time.perf_counter() - started:.2f} s in all")
    return results


def _fraction(text):
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1), got {text}")
    return value


def _hidden_layers(n_in, n_out, args, out_activation):
    import fastnn

    widths = [n_in] + [int(h) for h in args.hidden.split(",") if h.strip()]
    return [fastnn.Dense(a, b, activation="relu", l2=args.l2)
            for a, b in zip(widths[:-1], widths[1:])] + \
        [fastnn.Dense(widths[-1], n_out, out_activation)]


def train_csv(args):
    """Train on a user's CSV file (fastnn.tabular): its train / validation / test table."""
    import fastnn
    from fastnn import tabular

    started = time.perf_counter()
    table = tabular.read_csv(args.dataset)
    if args.target is None or args.target not in table.columns:
        what = "give the target column with --target" if args.target is None else \
            f"no column {args.target!r}"
        raise tabular.CSVError(f"{table.path}: {what} (its columns: "
                               f"{', '.join(table.columns)})")
    kinds = tabular.column_kinds(table)
    table = _without_missing(table, args.target, args.missing)
    n = len(table.rows)
    order = np.random.default_rng(args.seed).permutation(n)
    n_test, n_val = round(n * args.test), round(n * args.validation)
    n_train = n - n_test - n_val
    if n_train < 2 or n_val < 1:
        raise tabular.CSVError(f"{table.path}: {n} usable rows are too few for a training "
                               f"and a validation split (--validation {args.validation}, "
                               f"--test {args.test})")
    parts = {"train": table.subset(order[:n_train]),
             "validation": table.subset(order[n_train:n_train + n_val]),
             "test": table.subset(order[n_train + n_val:])}
    prep = tabular.Preprocessing.fit(parts["train"], kinds, args.target, args.task)
    data = {name: (prep.transform(part), prep.encode_target(part), part)
            for name, part in parts.items() if part.rows}
    classify = prep.task == "classification"
    model = fastnn.Sequential(
        _hidden_layers(prep.n_features, prep.n_outputs, args, "softmax" if classify else None),
        loss="categorical_crossentropy" if classify else "mse", dtype=args.dtype,
        seed=args.seed)
    what = f"{prep.n_outputs} classes" if classify else "regression"
    print(f"{table.path}: {n} rows ({n_train} train / {n_val} validation / {n_test} test), "
          f"{len(prep.features)} feature columns -> {prep.n_features} inputs; target "
          f"{args.target!r}: {what}\n{model}")
    history = model.fit(data["train"][0], data["train"][1], epochs=args.epochs,
                        batch_size=args.batch_size, optimizer=fastnn.Adam(lr=args.lr),
                        validation_data=data["validation"][:2], seed=args.seed,
                        verbose=0 if args.quiet else 1, early_stopping=args.patience or None)
    if history.best_epoch is not None:
        print(f"kept the weights of epoch {history.best_epoch + 1} (lowest validation loss)")
    metrics = ("log loss", "accuracy") if classify else ("MSE", "R2")
    print(f"\n{'split':<12}{metrics[0]:>12}{metrics[1]:>10}"
          f"{'' if classify else '   (MSE in the target units squared)'}")
    results = {}
    for name, (X, y, part) in data.items():
        if classify:
            scores = model.evaluate(X, y)
            results[name] = (scores["loss"], scores["accuracy"])
        else:
            truth = np.array(part.column(args.target), dtype=np.float64)
            pred = prep.decode(model.forward(X)).astype(np.float64)
            results[name] = (float(np.mean((pred - truth) ** 2)), _r2(truth, pred))
        print(f"{name:<12}{results[name][0]:>12.5g}{results[name][1]:>10.4f}")
    if args.save:
        model.preprocessing = prep
        model.save(args.save)
        print(f"saved the model and its preprocessing to {args.save}")
    print(f"\ntrained {len(history.epoch)} epochs in {sum(history.history['time']):.2f} s; "
          f"{time.perf_counter() - started:.2f} s in all")
    return results


def _without_missing(table, target, policy):
    """The rows to train on: without a missing target, and (policy "drop") without any
    missing value; what was missing and what was done is reported."""
    from fastnn import tabular

    missing = tabular.missing_cells(table)
    if not missing:
        return table
    drop = set(missing.get(target, ()))
    if policy == "drop":
        drop = drop.union(*missing.values())
    counts = ", ".join(f"{name}: {len(rows)}" for name, rows in missing.items())
    action = f"dropped {len(drop)} rows" + (" (--missing impute fills features)"
                                            if policy == "drop" else
                                            " without a target; imputed the rest")
    print(f"missing values in {len(set().union(*missing.values()))} rows ({counts}); {action}")
    keep = [i for i, r in enumerate(table.numbers) if r not in drop]
    if not keep:
        raise tabular.CSVError(f"{table.path}: every row has a missing value "
                               f"({counts}); try --missing impute")
    return table.subset(keep)


def predict_csv(args):
    """Apply a model trained by ``fastnn train PATH.csv --save`` to a CSV file."""
    import csv
    import io

    from fastnn.atomic_file import atomic_write

    import fastnn
    from fastnn import tabular

    model = fastnn.load(args.model)
    prep = model.preprocessing
    if prep is None:
        raise tabular.CSVError(f"{args.model}: this model was not trained on a CSV file "
                               "(fastnn train PATH.csv --save), so it has no preprocessing "
                               "to apply")
    table = tabular.read_csv(args.csv)
    predictions = prep.decode(model.forward(prep.transform(table)))
    used = {f["name"] for f in prep.features}
    imputed = {k: v for k, v in tabular.missing_cells(table).items() if k in used}
    if imputed:
        print(f"{args.csv}: imputed missing values ("
              f"{', '.join(f'{k}: {len(v)}' for k, v in imputed.items())})", file=sys.stderr)
    out = io.StringIO(newline="") if args.out else sys.stdout
    writer = csv.writer(out)
    writer.writerow([f"predicted_{prep.target}"])
    writer.writerows([p] for p in predictions)
    if args.out:
        with atomic_write(args.out, what="the predictions") as f:
            f.write(out.getvalue().encode())
        print(f"wrote {len(predictions)} predictions to {args.out}")
    return predictions


def _command_main(command, module):
    """``fastnn.<module>.main``, imported only when its command runs; a clear message
    (exit status 1) if that module is not part of this installation."""
    name = f"fastnn.{module}"
    try:
        return importlib.import_module(name).main
    except ModuleNotFoundError as exc:
        if exc.name != name:   # the module exists but one of its own imports is missing
            raise
        raise SystemExit(f"fastnn {command}: this installation has no {name} module, "
                         f"which the '{command}' command needs") from None


def _positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive integer, got {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _non_negative_float(text):
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _widths(text):
    """'64,64' -> '64,64' after checking every width is a positive integer."""
    try:
        widths = [int(w) for w in text.split(",") if w.strip()]
    except ValueError:
        widths = []
    if not widths or min(widths) <= 0:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive layer widths such as 64,64, got {text!r}")
    return text


def _parser():
    parser = argparse.ArgumentParser(
        prog="fastnn", description="fastnn: multilayer perceptrons trained by compiled "
        "kernels. Run 'fastnn COMMAND --help' for a command's options.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a model on a shipped data set or a CSV file")
    train.add_argument("dataset", help="'bike' (shipped with fastnn) or the path of a CSV "
                                       "file with a header row")
    train.add_argument("--target", help="a CSV's target column")
    train.add_argument("--task", choices=["auto", "classification", "regression"],
                       default="auto", help="a CSV's task (auto: classification for a text "
                       "target or few integer values)")
    train.add_argument("--missing", choices=["drop", "impute"], default="drop",
                       help="rows of a CSV with missing feature values: drop them, or put in "
                            "the training mean / most frequent category")
    train.add_argument("--validation", type=_fraction, default=0.15,
                       help="a CSV's share of rows for early stopping (0.15)")
    train.add_argument("--test", type=_fraction, default=0.15,
                       help="a CSV's share of held-out rows (0.15)")
    train.add_argument("--save", metavar="PATH", help="save the model (and a CSV's "
                       "preprocessing) to PATH")
    train.add_argument("--epochs", type=_positive_int, default=100, help="at most this many (100)")
    train.add_argument("--patience", type=_non_negative_int, default=10,
                       help="early stopping: epochs without a better validation loss (10; "
                            "0 disables)")
    train.add_argument("--batch-size", type=_positive_int, default=64)
    train.add_argument("--lr", type=_positive_float, default=1e-3, help="Adam learning rate")
    train.add_argument("--l2", type=_non_negative_float, default=1e-3,
                       help="L2 penalty of hidden weights")
    train.add_argument("--hidden", type=_widths, default="64,64",
                       help="hidden layer widths (64,64)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    train.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    predict = sub.add_parser("predict", help="apply a model saved by 'fastnn train PATH.csv "
                                             "--save' to a CSV file")
    predict.add_argument("model", help="the model file")
    predict.add_argument("csv", help="a CSV file with the columns the model was trained on")
    predict.add_argument("--out", metavar="PATH", help="write the predictions to PATH "
                                                       "(default: standard output)")
    ahead = sub.add_parser("compile", help="compile the kernels of the common configurations "
                           "ahead of time (a few minutes, once), so that first fits start at once")
    ahead.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    info = sub.add_parser("info", help="what decides speed on this machine")
    info.add_argument("--json", action="store_true")
    sub.add_parser("bench", help="the head-to-head comparison (scripts/compare.py); "
                   "--sklearn: scikit-learn's MLP against fastnn's (scripts/sklearn_swap.py)",
                   add_help=False)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        if "--sklearn" in argv[1:]:
            rest = [a for a in argv[1:] if a != "--sklearn"]
            return _command_main("bench --sklearn", "bench.sklearn_swap")(rest) or 0
        return _command_main("bench", "bench")(argv[1:]) or 0
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "train" and args.dataset == "bike" and args.target is not None:
        parser.error("--target is for CSV files; bike's target is its hourly count")
    if args.command in ("train", "predict"):
        from fastnn.compile_notice import echo_to_stderr
        from fastnn.tabular import CSVError

        echo_to_stderr()   # a first run's compile pause is announced

        # a model file that does not load is a ValueError naming it (fastnn.load)
        errors = (CSVError, OSError) + ((ValueError,) if args.command == "predict" else ())
        try:
            if args.command == "predict":
                predict_csv(args)
            elif args.dataset == "bike":
                train_bike(args)
            else:
                train_csv(args)
        except errors as exc:
            print(f"fastnn {args.command}: error: {_one_line(exc)}", file=sys.stderr)
            return 2
    elif args.command == "compile":
        import fastnn

        fastnn.compile(("float32", "float64") if args.dtype == "both" else (args.dtype,))
    elif args.command == "info":
        return _command_main("info", "sysinfo")(args) or 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
