"""The shipped bike-sharing data, its preparation, and the main job."""
import datetime
import hashlib
import subprocess
import sys

import numpy as np
import pytest

from fastnn.cli import _parser, main, train_bike
from fastnn.datasets import bike, load_bike


@pytest.fixture(scope="module")
def data():
    return load_bike()


def test_shipped_file_is_the_documented_one():
    with open(bike.PATH, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == bike.SHA256


def test_splits_by_days_and_shapes(data):
    rows = bike.fill_missing(bike.read_rows())
    days = sorted({r["date"] for r in rows})
    assert len(rows) == 17379 and days[-1] == datetime.date(2012, 12, 31)
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == len(rows)
    n_train, n_val = len(data.y_train), len(data.y_val)
    # rows are in time order, so the splits are consecutive blocks of whole days
    train_days = {r["date"] for r in rows[:n_train]}
    val_days = {r["date"] for r in rows[n_train:n_train + n_val]}
    test_days = {r["date"] for r in rows[n_train + n_val:]}
    assert sorted(test_days) == days[-bike.TEST_DAYS:]
    assert sorted(val_days) == days[-bike.TEST_DAYS - bike.VALIDATION_DAYS:-bike.TEST_DAYS]
    assert max(train_days) < min(val_days) and len(train_days) == len(days) - 81
    assert days[-1] - days[0] == datetime.timedelta(days=len(days) - 1)   # no day is absent
    assert 55 * 24 < n_val <= bike.VALIDATION_DAYS * 24 and 18 * 24 < len(data.y_test) <= 21 * 24
    for X in (data.X_train, data.X_val, data.X_test):
        assert X.shape[1] == 56 == len(data.feature_names) and X.dtype == np.float32
        assert np.isfinite(X).all()
        # every one-hot group has exactly one 1 per row (missing values were filled)
        for start, width in ((5, 4), (9, 4), (13, 12), (25, 24), (49, 7)):
            np.testing.assert_array_equal(X[:, start:start + width].sum(axis=1), 1)


def test_standardized_with_training_statistics(data):
    y, X = data.y_train.astype(np.float64), data.X_train[:, 2:5].astype(np.float64)
    np.testing.assert_allclose(y.mean(), 0, atol=1e-6)
    np.testing.assert_allclose(y.std(), 1, rtol=1e-6)
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(X.std(axis=0), 1, rtol=1e-6)
    assert abs(data.y_test.mean()) > 0.05   # test statistics were not used
    assert 100 < data.target_mean < 300 and data.target_std > 50


def test_missing_values_are_recovered():
    raw = bike.read_rows()
    blank_weekday = [i for i, r in enumerate(raw) if not r["weekday"].strip()]
    blank_weather = [i for i, r in enumerate(raw) if not r["weathersit"].strip()]
    assert len(blank_weekday) == 875 and len(blank_weather) == 1258
    # the day-name convention of the file is the calendar's
    named = [r for r in raw if r["weekday"].strip()]
    assert all(bike.WEEKDAYS[r["date"].weekday()] == r["weekday"] for r in named)
    filled = bike.fill_missing([dict(r) for r in raw])
    for i in blank_weekday:
        assert filled[i]["weekday"] == bike.WEEKDAYS[raw[i]["date"].weekday()]
    # ... and the encoded one-hot weekday is the calendar's for every row
    X, _, _ = bike.encode(filled)
    calendar = np.array([r["date"].weekday() for r in filled])
    np.testing.assert_array_equal(X[:, 49:56].argmax(axis=1), calendar)
    assert all(r["weathersit"] in bike.WEATHER for r in filled)
    for i in blank_weather:
        assert filled[i]["weathersit"] in bike.WEATHER
        previous = next((filled[k]["weathersit"] for k in range(i - 1, -1, -1)
                         if raw[k]["weathersit"].strip()), None)
        assert previous is None or filled[i]["weathersit"] == previous


def test_main_job_reaches_validation_mse_goal(capsys):
    args = _parser().parse_args(["train", "bike", "--quiet"])
    results = train_bike(args)
    assert results["validation"][0] <= 0.13, results
    assert results["test"][0] <= 0.2 and results["validation"][1] > 0.85, results
    out = capsys.readouterr().out
    assert "validation" in out and "R2" in out


def test_cli_smoke_one_epoch():
    out = subprocess.run([sys.executable, "-m", "fastnn", "train", "bike", "--epochs", "1"],
                         capture_output=True, text=True, check=True).stdout
    assert "epoch 1/1" in out and "test" in out and "R2" in out


@pytest.mark.parametrize("bad", [["--epochs", "0"], ["--hidden", "64,x"], ["--lr", "-1"],
                                 ["--batch-size", "0"], ["--dtype", "float16"]])
def test_cli_rejects_bad_arguments(bad, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "bike", *bad])
    assert exc.value.code == 2 and bad[0] in capsys.readouterr().err


@pytest.mark.parametrize("command, module", [("bench", "fastnn.bench"),
                                             ("info", "fastnn.sysinfo")])
def test_missing_command_module_is_a_clear_error(command, module, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)   # makes the import fail as if absent
    with pytest.raises(SystemExit) as exc:
        main([command])
    assert f"no {module} module" in str(exc.value.code)


def test_cli_prints_one_line_per_epoch():
    out = subprocess.run([sys.executable, "-m", "fastnn", "train", "bike", "--epochs", "3",
                          "--patience", "0"], capture_output=True, text=True, check=True).stdout
    assert [l.split()[1] for l in out.splitlines() if l.startswith("epoch ")] == \
        ["1/3", "2/3", "3/3"]
    assert "test" in out
