"""The bike-sharing regression data set, prepared by the classic protocol.

Rows are ordered by date and hour; the last 21 days are the test set and the 60 days
before them the validation set. Features (56): yr, holiday, temp, hum, windspeed and
one-hot season (4), weathersit (4), month (12), hour (24), weekday (7) — atemp,
workingday, casual and registered are left out. temp, hum, windspeed and the target
cnt are standardized with the training set's mean and standard deviation.

Missing values: a blank weekday is recomputed from the date; a blank weathersit is
taken from the nearest earlier hour (the first rows from the nearest later one).
"""
import csv
import datetime
import gzip
import os
from collections import namedtuple

import numpy as np

PATH = os.path.join(os.path.dirname(__file__), "bike_sharing_hourly.csv.gz")
SHA256 = "a5740c25ce1362a9f98f55ca50a21e4d5a43d6da26b1fbbadbecd968e1f967e4"
TEST_DAYS, VALIDATION_DAYS = 21, 60

SEASONS = ("spring", "summer", "fall", "winter")
WEATHER = ("Clear", "Mist", "Light Rain", "Heavy Rain")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HOURS = tuple(f"{h % 12 or 12}{'am' if h < 12 else 'pm'}" for h in range(24))
NUMERIC = ("temp", "hum", "windspeed")

BikeData = namedtuple("BikeData", "X_train y_train X_val y_val X_test y_test feature_names "
                                  "target_mean target_std")


def read_rows(path=PATH):
    """The CSV as a list of dicts, ordered by date and hour."""
    with gzip.open(path, "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    hour = {name: h for h, name in enumerate(HOURS)}
    for row in rows:
        row["date"] = datetime.date.fromisoformat(row["dteday"])
        row["hour"] = hour[row["hr"]]
    rows.sort(key=lambda r: (r["date"], r["hour"]))
    return rows


def fill_missing(rows):
    """Recover blank weekdays from the date; fill blank weathersit from the nearest
    earlier hour (nearest later one for leading blanks). Modifies ``rows``."""
    for row in rows:
        if not row["weekday"].strip():
            row["weekday"] = WEEKDAYS[row["date"].weekday()]
    last = next(r["weathersit"] for r in rows if r["weathersit"].strip())
    for row in rows:
        if row["weathersit"].strip():
            last = row["weathersit"]
        else:
            row["weathersit"] = last
    return rows


def feature_names():
    return (["yr", "holiday", *NUMERIC]
            + [f"season={s}" for s in SEASONS] + [f"weathersit={w}" for w in WEATHER]
            + [f"month={m}" for m in range(1, 13)] + [f"hour={h}" for h in range(24)]
            + [f"weekday={d}" for d in WEEKDAYS])


def encode(rows):
    """(X, cnt, day index) with unstandardized numeric columns."""
    n = len(rows)
    X = np.zeros((n, len(feature_names())))
    offsets = {"season": 5, "weathersit": 9, "month": 13, "hour": 25, "weekday": 49}
    first = rows[0]["date"]
    day = np.empty(n, dtype=np.int64)
    cnt = np.empty(n)
    for i, r in enumerate(rows):
        X[i, 0] = r["date"].year - 2011
        X[i, 1] = r["holiday"] == "Yes"
        for k, name in enumerate(NUMERIC):
            X[i, 2 + k] = float(r[name])
        X[i, offsets["season"] + SEASONS.index(r["season"])] = 1
        X[i, offsets["weathersit"] + WEATHER.index(r["weathersit"])] = 1
        X[i, offsets["month"] + r["date"].month - 1] = 1
        X[i, offsets["hour"] + r["hour"]] = 1
        X[i, offsets["weekday"] + WEEKDAYS.index(r["weekday"])] = 1
        cnt[i] = float(r["cnt"])
        day[i] = (r["date"] - first).days
    return X, cnt, day


def load_bike(dtype="float32", path=PATH):
    """The prepared splits (see the module docstring) as a BikeData tuple."""
    X, cnt, day = encode(fill_missing(read_rows(path)))
    last = day.max()
    test = day > last - TEST_DAYS
    val = ~test & (day > last - TEST_DAYS - VALIDATION_DAYS)
    train = ~test & ~val
    cols = slice(2, 2 + len(NUMERIC))
    mean, std = X[train, cols].mean(axis=0), X[train, cols].std(axis=0)
    X[:, cols] = (X[:, cols] - mean) / std
    t_mean, t_std = cnt[train].mean(), cnt[train].std()
    y = (cnt - t_mean) / t_std
    parts = [a.astype(dtype) for m in (train, val, test) for a in (X[m], y[m])]
    return BikeData(*parts, feature_names(), t_mean, t_std)
