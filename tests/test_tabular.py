"""fastnn.tabular and the CSV commands: reading, column kinds, the preprocessing against
a slow reference, the model file keeping it, ``fastnn train PATH.csv`` / ``fastnn
predict`` end to end, and one clear line with exit status 2 for every malformed file."""
import csv
import json
import os

import numpy as np
import pytest

import fastnn
from fastnn import cli, tabular

CITIES = ["Paris", "Lyon", "Nice", "Brest"]


def _write(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def _houses(rng, n, missing=0.0):
    """Rows of a random table: two numeric columns, a text one, an integer one, a
    numeric target and a text target; ``missing`` of the feature cells left empty."""
    rows = []
    for _ in range(n):
        area, age = rng.uniform(20, 200), rng.uniform(0, 90)
        city, rooms = CITIES[int(rng.integers(0, 4))], int(rng.integers(1, 6))
        price = 3000 * area - 400 * age + 30000 * rooms + 90000 * CITIES.index(city) + \
            rng.normal(0, 5000)
        kind = "big" if area > 120 else "mid" if area > 70 else "small"
        row = [f"{area:.2f}", f"{age:.1f}", city, str(rooms), f"{price:.0f}", kind]
        for c in range(4):
            if rng.random() < missing:
                row[c] = str(rng.choice(["", "NA", "?", "nan"]))
        rows.append(row)
    return ["area", "age", "city", "rooms", "price", "kind"], rows


# ------------------------------------------------------------------ reading
@pytest.mark.parametrize("content, message", [
    ("", "empty file"),
    ("a,b,y\n", "no data rows"),
    ("a,b,y\n1,2,3\n4,5\n", "row 3: 2 fields, but the header has 3"),
    ("a,b,y\n1,2,3\n4,5,6,7\n", "row 3: 4 fields"),
    ("a,,y\n1,2,3\n", "row 1, column 2: empty column name"),
    ("a,b,a\n1,2,3\n", "row 1, column 3: column name 'a' repeated"),
])
def test_malformed_files(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(tabular.CSVError, match=f"bad.csv: {message}"):
        tabular.read_csv(str(path))


def test_reading_keeps_row_numbers_and_handles_bom_and_blank_tail(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeffa,b\n1,x\n2,y\n\n\n".encode("utf-8"))
    table = tabular.read_csv(str(path))
    assert table.columns == ["a", "b"] and table.rows == [["1", "x"], ["2", "y"]]
    assert table.numbers == [2, 3] and table.subset([1]).numbers == [3]
    path.write_bytes(b"a,b\n1,\xff\n")
    with pytest.raises(tabular.CSVError, match="not UTF-8"):
        tabular.read_csv(str(path))


def test_column_kinds_and_a_stray_word(tmp_path):
    rng = np.random.default_rng(1)
    header, rows = _houses(rng, 60, missing=0.05)
    table = tabular.read_csv(_write(tmp_path / "h.csv", header, rows))
    assert tabular.column_kinds(table) == {"area": "numeric", "age": "numeric",
                                           "city": "text", "rooms": "numeric",
                                           "price": "numeric", "kind": "text"}
    rows[41][1] = "old"
    table = tabular.read_csv(_write(tmp_path / "h.csv", header, rows))
    with pytest.raises(tabular.CSVError, match="row 43, column 'age': non-numeric value 'old'"):
        tabular.column_kinds(table)


# ------------------------------------------------------------ preprocessing
def _reference(rows, header, target, fit_rows):
    """Slow reference: standardize numeric columns and one-hot text columns with the
    statistics of ``fit_rows`` (missing values: mean / most frequent category)."""
    def missing(v):
        return v.strip().lower() in tabular.MISSING

    out = [[] for _ in rows]
    for c, name in enumerate(header):
        if name == target:
            continue
        present = [r[c].strip() for r in fit_rows if not missing(r[c])]
        try:
            values = [float(v) for v in present]
        except ValueError:
            categories = sorted(set(present))
            mode = max(categories, key=present.count)
            for o, r in zip(out, rows):
                v = mode if missing(r[c]) else r[c].strip()
                o += [1.0 if v == k else 0.0 for k in categories]
            continue
        mean = sum(values) / len(values)
        std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5 or 1.0
        for o, r in zip(out, rows):
            o.append(((mean if missing(r[c]) else float(r[c])) - mean) / std)
    return np.array(out)


@pytest.mark.parametrize("seed", range(4))
def test_preprocessing_matches_the_reference(tmp_path, seed):
    rng = np.random.default_rng(seed)
    header, rows = _houses(rng, int(rng.integers(5, 80)), missing=0.1)
    table = tabular.read_csv(_write(tmp_path / "h.csv", header, rows))
    kinds = tabular.column_kinds(table)
    train = table.subset(range(0, len(rows), 2))
    prep = tabular.Preprocessing.fit(train, kinds, "price", task="regression")
    assert prep.n_outputs == 1
    np.testing.assert_allclose(prep.transform(table), _reference(rows, header, "price",
                                                                 train.rows), atol=1e-12)
    prices = np.array([float(r[4]) for r in train.rows])
    np.testing.assert_allclose(prep.encode_target(train), (prices - prices.mean()) /
                               prices.std())
    np.testing.assert_allclose(prep.decode(prep.encode_target(train)[:, None]), prices)
    assert len(prep.feature_names()) == prep.n_features


def test_task_inference_and_classes(tmp_path):
    rng = np.random.default_rng(5)
    header, rows = _houses(rng, 50)
    table = tabular.read_csv(_write(tmp_path / "h.csv", header, rows))
    kinds = tabular.column_kinds(table)
    assert tabular.Preprocessing.fit(table, kinds, "kind").task == "classification"
    assert tabular.Preprocessing.fit(table, kinds, "price").task == "regression"
    few = table.subset(range(6))   # six integer prices: too few repeats to be classes
    assert tabular.Preprocessing.fit(few, kinds, "price").task == "regression"
    rooms = tabular.Preprocessing.fit(table, kinds, "rooms")   # few integer values
    assert rooms.task == "classification" and rooms.target_encoding["classes"] == \
        sorted({int(r[3]) for r in rows})
    assert tabular.Preprocessing.fit(table, kinds, "rooms", task="regression").task == \
        "regression"
    with pytest.raises(tabular.CSVError, match="regression target must be numeric"):
        tabular.Preprocessing.fit(table, kinds, "kind", task="regression")
    prep = tabular.Preprocessing.fit(table, kinds, "kind")
    ids = prep.encode_target(table)
    assert [prep.target_encoding["classes"][i] for i in ids] == [r[5] for r in rows]
    one_class = table.subset([i for i, r in enumerate(rows) if r[5] == rows[0][5]])
    with pytest.raises(tabular.CSVError, match="at least 2 classes"):
        tabular.Preprocessing.fit(one_class, kinds, "kind")


def test_a_category_unseen_in_training_encodes_as_zeros(tmp_path):
    header = ["c", "y"]
    train = tabular.read_csv(_write(tmp_path / "a.csv", header, [["x", 1], ["y", 2]]))
    prep = tabular.Preprocessing.fit(train, {"c": "text", "y": "numeric"}, "y", "regression")
    new = tabular.read_csv(_write(tmp_path / "b.csv", header, [["z", 1], ["", 0]]))
    np.testing.assert_array_equal(prep.transform(new), [[0, 0], [1, 0]])   # "" -> mode "x"


# ------------------------------------------------------- the model file
def _classifier_with_preprocessing(tmp_path, rng):
    """(a table, a model of the 'kind' column holding its fitted preprocessing)."""
    header, rows = _houses(rng, 40)
    table = tabular.read_csv(_write(tmp_path / "h.csv", header, rows))
    prep = tabular.Preprocessing.fit(table, tabular.column_kinds(table), "kind")
    model = fastnn.Sequential([fastnn.Dense(prep.n_features, 3, "softmax")],
                              loss="categorical_crossentropy", seed=0)
    model.preprocessing = prep
    return table, model


def test_the_model_file_keeps_the_preprocessing(tmp_path):
    table, model = _classifier_with_preprocessing(tmp_path, np.random.default_rng(6))
    prep = model.preprocessing
    model.save(tmp_path / "m.fnn")
    loaded = fastnn.load(tmp_path / "m.fnn")
    assert json.dumps(loaded.preprocessing.config()) == json.dumps(prep.config())
    np.testing.assert_array_equal(loaded.preprocessing.transform(table), prep.transform(table))
    assert fastnn.load(tmp_path / "m.fnn").preprocessing is not None
    model.preprocessing = None
    model.save(tmp_path / "plain.fnn")
    assert fastnn.load(tmp_path / "plain.fnn").preprocessing is None


@pytest.mark.parametrize("edit", [
    lambda c: c.update(task="clustering"),
    lambda c: c["features"][0].update(std=0.0),
    lambda c: c["features"].pop(),
    lambda c: c["target_encoding"].update(classes=["only"]),
    lambda c: c.pop("target"),
])
def test_a_damaged_preprocessing_record_is_a_clear_error(tmp_path, edit):
    from fastnn import persistence
    from fastnn.loading import model_from_arrays

    _, model = _classifier_with_preprocessing(tmp_path, np.random.default_rng(7))
    arrays = persistence.model_arrays(model)
    header_json = json.loads(arrays["header"].tobytes())
    edit(header_json["preprocessing"])
    arrays["header"] = np.frombuffer(json.dumps(header_json).encode(), dtype=np.uint8)
    with pytest.raises(ValueError, match="preprocessing"):
        model_from_arrays(arrays)


# ------------------------------------------------------------ the commands
def _train(capsys, *argv):
    status = cli.main(["train", *argv, "--quiet", "--epochs", "40"])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("target, missing", [("price", "drop"), ("kind", "impute")])
def test_train_save_and_predict(tmp_path, capsys, target, missing):
    rng = np.random.default_rng(8)
    header, rows = _houses(rng, 300, missing=0.03)
    path = _write(tmp_path / "h.csv", header, rows)
    status, out, _ = _train(capsys, path, "--target", target, "--missing", missing,
                            "--save", str(tmp_path / "m.fnn"))
    assert status == 0 and "missing values in" in out and "test" in out
    metric = float(next(line for line in out.splitlines() if line.startswith("test "))
                   .split()[2])
    assert metric > (0.9 if target == "price" else 0.8)   # R² / accuracy on held-out rows
    if target == "kind":    # replacing a file keeps its mode
        (tmp_path / "p.csv").write_text("old")
        (tmp_path / "p.csv").chmod(0o640)
    assert cli.main(["predict", str(tmp_path / "m.fnn"), path, "--out",
                     str(tmp_path / "p.csv")]) == 0
    (tmp_path / "plain").write_text("")    # the mode of a new file under this umask
    modes = {n: os.stat(tmp_path / n).st_mode & 0o777 for n in ("p.csv", "m.fnn", "plain")}
    assert modes["p.csv"] == (0o640 if target == "kind" else modes["plain"])
    assert modes["m.fnn"] == modes["plain"]
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    with open(tmp_path / "p.csv", newline="") as f:
        written = list(csv.reader(f))
    assert written[0] == [f"predicted_{target}"] and len(written) == len(rows) + 1
    model = fastnn.load(tmp_path / "m.fnn")
    table = tabular.read_csv(path)
    expected = model.preprocessing.decode(model.forward(model.preprocessing.transform(table)))
    assert [r[0] for r in written[1:]] == [str(v) for v in expected]
    if target == "kind":
        truth = [r[5] for r in rows]
        assert np.mean([p == t for p, t in zip(expected, truth)]) > 0.8


BAD_COMMANDS = {
    "ragged": (["train", "{d}/ragged.csv", "--target", "y"], "ragged.csv: row 3: 2 fields"),
    "empty": (["train", "{d}/empty.csv", "--target", "y"], "empty.csv: empty file"),
    "unknown target": (["train", "{d}/good.csv", "--target", "z"], "good.csv: no column 'z'"),
    "no target": (["train", "{d}/good.csv"], "give the target column with --target"),
    "word in numbers": (["train", "{d}/word.csv", "--target", "y"],
                        "word.csv: row 20, column 'a': non-numeric value 'abc'"),
    "missing file": (["train", "{d}/none.csv", "--target", "y"], "none.csv"),
    "too few rows": (["train", "{d}/tiny.csv", "--target", "y"], "too few"),
    "not a model": (["predict", "{d}/good.csv", "{d}/good.csv"], "not a readable fastnn model"),
    "model without csv": (["predict", "{d}/plain.fnn", "{d}/good.csv"],
                          "was not trained on a CSV file"),
    "missing column": (["predict", "{d}/m.fnn", "{d}/other.csv"], "no column 'a'"),
    "bad value": (["predict", "{d}/m.fnn", "{d}/badvalue.csv"],
                  "badvalue.csv: row 3, column 'a': non-numeric value '1x'"),
}


@pytest.mark.parametrize("case", sorted(BAD_COMMANDS))
def test_bad_files_give_one_line_and_status_2(tmp_path, capsys, case):
    d = tmp_path
    (d / "ragged.csv").write_text("a,b,y\n1,2,3\n4,5\n")
    (d / "empty.csv").write_text("")
    good = [[str(i), str(i % 7), str(i % 2)] for i in range(40)]
    _write(d / "good.csv", ["a", "b", "y"], good)
    _write(d / "word.csv", ["a", "b", "y"], good[:18] + [["abc", "1", "0"]] + good[19:])
    _write(d / "tiny.csv", ["a", "b", "y"], good[:2])
    _write(d / "other.csv", ["x", "b"], [["1", "2"]])
    _write(d / "badvalue.csv", ["a", "b"], [["1", "2"], ["1x", "2"]])
    fastnn.Sequential([fastnn.Dense(2, 1)], seed=0).save(d / "plain.fnn")
    assert _train(capsys, str(d / "good.csv"), "--target", "y", "--save", str(d / "m.fnn"))[0] == 0
    argv, message = BAD_COMMANDS[case]
    status = cli.main([a.format(d=d) for a in argv])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and message in err, err
