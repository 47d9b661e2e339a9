"""A user's CSV file as features and targets: read strictly, and the preprocessing that
``fastnn train PATH.csv`` fits on the training rows and keeps in the model file, for
``fastnn predict`` to apply.

- The file: a header row of distinct, non-empty column names, then rows with as many
  fields (UTF-8, a BOM allowed). Missing values: empty, NA, N/A, NaN, null, None, ?
  (any case).
- A column is numeric when each of its values is a number, text when most are not; a
  column of numbers with a few words (under 10 %) is an error naming the row.
- Numeric features are standardized with the training rows' mean and standard
  deviation (a constant column is centred only); text features are one-hot encoded
  over the training rows' categories (a category not seen in training: all zeros).
- Missing feature values: the rows are dropped (``missing="drop"``) or given the
  training mean / most frequent category (``missing="impute"``); rows without a
  target are always dropped. ``fastnn predict`` imputes.
- The target: classification when it is text, or integers with at most
  ``MAX_CLASSES`` distinct values each seen twice on average; else regression (``task``
  overrides). A regression
  target is standardized for training; predictions are given in its units.

Every error is a CSVError (a ValueError) of one line naming the file, row and column.
"""
import csv
import math
from collections import namedtuple

import numpy as np

MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
#: integer targets with at most this many distinct values are classes
MAX_CLASSES = 20
#: a column whose values are numbers except for fewer than this share is an error
_TEXT_SHARE = 0.1


class CSVError(ValueError):
    """A malformed or unsuitable CSV file: the message names file, row and column."""


def is_missing(value):
    return value.strip().lower() in MISSING


class Table(namedtuple("Table", "path columns rows numbers")):
    """A CSV's column names, its rows (lists of strings) and their row numbers in the
    file (the header is row 1)."""

    def column(self, name):
        c = self.columns.index(name)
        return [row[c] for row in self.rows]

    def subset(self, indices):
        return Table(self.path, self.columns, [self.rows[i] for i in indices],
                     [self.numbers[i] for i in indices])


def read_csv(path):
    """The Table of the CSV file at ``path``."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            records = list(csv.reader(f))
    except UnicodeDecodeError as exc:
        raise CSVError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise CSVError(f"{path}: not a readable CSV file ({exc})") from None
    if not records or not any(field.strip() for field in records[0]):
        raise CSVError(f"{path}: empty file (no header row)")
    columns = [name.strip() for name in records[0]]
    for i, name in enumerate(columns):
        if not name:
            raise CSVError(f"{path}: row 1, column {i + 1}: empty column name")
        if name in columns[:i]:
            raise CSVError(f"{path}: row 1, column {i + 1}: column name {name!r} repeated")
    rows = records[1:]
    while rows and not any(field.strip() for field in rows[-1]):   # trailing blank lines
        rows.pop()
    if not rows:
        raise CSVError(f"{path}: no data rows after the header")
    for r, row in enumerate(rows, start=2):
        if len(row) != len(columns):
            raise CSVError(f"{path}: row {r}: {len(row)} fields, but the header has "
                           f"{len(columns)} columns")
    return Table(path, columns, rows, list(range(2, len(rows) + 2)))


def _number(text):
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def column_kinds(table):
    """{column: "numeric" or "text"} from every row's values (missing ones left out); a
    mostly numeric column with a few other values is an error naming the first."""
    kinds = {}
    for name in table.columns:
        present = [(r, v) for r, v in zip(table.numbers, table.column(name))
                   if not is_missing(v)]
        bad = [(r, v) for r, v in present if _number(v) is None]
        if bad and len(bad) < _TEXT_SHARE * len(present):
            r, v = bad[0]
            raise CSVError(f"{table.path}: row {r}, column {name!r}: non-numeric value {v!r} "
                           "in a numeric column")
        kinds[name] = "text" if bad else "numeric"
    return kinds


def missing_cells(table):
    """{column: row numbers with a missing value} for the columns that have any."""
    found = {}
    for name in table.columns:
        rows = [r for r, v in zip(table.numbers, table.column(name)) if is_missing(v)]
        if rows:
            found[name] = rows
    return found


class Preprocessing:
    """The fitted encoding of a CSV's feature columns and target (see the module
    docstring). ``config()`` is plain JSON data; ``Preprocessing(**config)`` rebuilds."""

    def __init__(self, target, task, features, target_encoding):
        self.target = target
        self.task = task
        self.features = features                # [{"name", "kind", stats}]
        self.target_encoding = target_encoding  # {"classes": [...]} or {"mean", "std"}

    # -------------------------------------------------------------- fitting
    @classmethod
    def fit(cls, table, kinds, target, task="auto"):
        """The preprocessing of ``target`` fitted on ``table`` (the training rows, none
        of them missing the target); ``kinds`` from ``column_kinds`` of the whole file."""
        values = table.column(target)
        if task == "auto":
            task = "classification" if kinds[target] == "text" or _few_integers(values) \
                else "regression"
        if task == "regression":
            if kinds[target] == "text":
                raise CSVError(f"{table.path}: column {target!r}: a regression target must "
                               "be numeric")
            y = np.array([float(v) for v in values])
            std = float(y.std())
            encoding = {"mean": float(y.mean()), "std": std if std > 0 else 1.0}
        else:
            classes = sorted(set(_label(v, kinds[target]) for v in values), key=_label_order)
            if len(classes) < 2:
                raise CSVError(f"{table.path}: column {target!r}: classification needs at "
                               f"least 2 classes, the training rows have {len(classes)}")
            encoding = {"classes": classes}
        features = []
        for name in table.columns:
            if name == target:
                continue
            present = [v.strip() for v in table.column(name) if not is_missing(v)]
            if kinds[name] == "numeric":
                x = np.array([float(v) for v in present]) if present else np.zeros(1)
                std = float(x.std())
                features.append({"name": name, "kind": "numeric", "mean": float(x.mean()),
                                 "std": std if std > 0 else 1.0})
            else:
                counts = {}
                for v in present:
                    counts[v] = counts.get(v, 0) + 1
                categories = sorted(counts)
                mode = max(categories, key=lambda k: counts[k]) if categories else ""
                features.append({"name": name, "kind": "text", "categories": categories,
                                 "mode": mode})
        return cls(target, task, features, encoding)

    def config(self):
        return {"target": self.target, "task": self.task, "features": self.features,
                "target_encoding": self.target_encoding}

    # -------------------------------------------------------------- applying
    @property
    def n_features(self):
        return sum(1 if f["kind"] == "numeric" else len(f["categories"])
                   for f in self.features)

    @property
    def n_outputs(self):
        return len(self.target_encoding["classes"]) if self.task == "classification" else 1

    def feature_names(self):
        names = []
        for f in self.features:
            names += [f["name"]] if f["kind"] == "numeric" else \
                [f"{f['name']}={c}" for c in f["categories"]]
        return names

    def transform(self, table):
        """The feature matrix (n, n_features) of ``table``'s rows; missing values get
        the training mean / most frequent category. A feature column the table lacks or
        a non-numeric value in a numeric column is a CSVError."""
        X = np.zeros((len(table.rows), self.n_features))
        at = 0
        for f in self.features:
            if f["name"] not in table.columns:
                raise CSVError(f"{table.path}: no column {f['name']!r}, which the model was "
                               "trained with")
            values = table.column(f["name"])
            if f["kind"] == "numeric":
                for i, (r, v) in enumerate(zip(table.numbers, values)):
                    x = f["mean"] if is_missing(v) else _number(v)
                    if x is None:
                        raise CSVError(f"{table.path}: row {r}, column {f['name']!r}: "
                                       f"non-numeric value {v!r} in a numeric column")
                    X[i, at] = (x - f["mean"]) / f["std"]
                at += 1
            else:
                position = {category: k for k, category in enumerate(f["categories"])}
                for i, v in enumerate(values):
                    k = position.get(f["mode"] if is_missing(v) else v.strip())
                    if k is not None:
                        X[i, at + k] = 1.0
                at += len(f["categories"])
        return X

    def encode_target(self, table):
        """The model's targets for ``table``'s rows: class ids (n,), or standardized
        values (n,)."""
        values = table.column(self.target)
        if self.task == "regression":
            y = np.array([_number(v) for v in values], dtype=np.float64)
            return (y - self.target_encoding["mean"]) / self.target_encoding["std"]
        classes = self.target_encoding["classes"]
        kind = "numeric" if all(isinstance(c, int) for c in classes) else "text"
        position = {c: k for k, c in enumerate(classes)}
        ids = np.empty(len(values), dtype=np.int64)
        for i, (r, v) in enumerate(zip(table.numbers, values)):
            label = _label(v, kind)
            if label not in position:
                raise CSVError(f"{table.path}: row {r}, column {self.target!r}: class "
                               f"{v.strip()!r} is not among the training rows' classes")
            ids[i] = position[label]
        return ids

    def decode(self, outputs):
        """The model's outputs as predictions in the target's terms: class labels, or
        values in the target's units."""
        if self.task == "classification":
            return np.asarray(self.target_encoding["classes"], dtype=object)[
                outputs.argmax(axis=1)]
        return outputs[:, 0] * self.target_encoding["std"] + self.target_encoding["mean"]


def _few_integers(values):
    """Integers with at most MAX_CLASSES distinct values, each seen twice on average."""
    numbers = [_number(v) for v in values if not is_missing(v)]
    distinct = len(set(numbers))
    return all(x is not None and x == int(x) for x in numbers) and \
        distinct <= min(MAX_CLASSES, len(numbers) // 2)


def _label(value, kind):
    """A class label: an int for integer-valued numbers, else the stripped text."""
    if kind == "numeric":
        x = _number(value)
        if x is not None and x == int(x):
            return int(x)
    return value.strip()


def _label_order(label):
    return (isinstance(label, str), label if isinstance(label, str) else float(label))


def from_config(config):
    """A Preprocessing from ``config()``'s data, every field checked (ValueError)."""
    try:
        target, task = config["target"], config["task"]
        features, encoding = config["features"], config["target_encoding"]
        ok = isinstance(target, str) and task in ("classification", "regression") and \
            isinstance(features, list) and isinstance(encoding, dict)
        for f in features if ok else ():
            ok = ok and isinstance(f, dict) and isinstance(f.get("name"), str) and (
                (f.get("kind") == "numeric" and _finite_numbers(f, ("mean", "std"))
                 and f["std"] > 0) or
                (f.get("kind") == "text" and isinstance(f.get("categories"), list) and
                 all(isinstance(c, str) for c in f["categories"]) and
                 isinstance(f.get("mode"), str)))
        if ok and task == "classification":
            classes = encoding.get("classes")
            ok = isinstance(classes, list) and len(classes) >= 2 and all(
                isinstance(c, (str, int)) and not isinstance(c, bool) for c in classes)
        elif ok:
            ok = _finite_numbers(encoding, ("mean", "std")) and encoding["std"] > 0
    except (KeyError, TypeError):
        ok = False
    if not ok:
        raise ValueError("its CSV preprocessing record is malformed")
    return Preprocessing(target, task, features, encoding)


def _finite_numbers(mapping, keys):
    return all(isinstance(mapping.get(k), (int, float)) and not isinstance(mapping.get(k), bool)
               and math.isfinite(mapping[k]) for k in keys)
