"""fastnn.atomic_file: the bytes written are the bytes in the file, writeback is started
on exactly the ranges of large writes after they reach the file, and a failure leaves
the previous file and no temporary file."""
import os
import zlib

import numpy as np
import pytest

from fastnn import atomic_file, container


def _writes(rng, chunk):
    """Random payloads: empty, one byte, odd sizes and several chunks long."""
    sizes = [0, 1, chunk - 1, chunk, chunk + 1, 3 * chunk + 17, int(rng.integers(2, 5 * chunk))]
    return [rng.bytes(n) for n in rng.permutation(sizes)]


@pytest.mark.parametrize("early", [True, False])
def test_the_file_holds_what_was_written(tmp_path, monkeypatch, early):
    rng = np.random.default_rng(11)
    chunk = 4096 + int(rng.integers(1, 999))
    monkeypatch.setattr(atomic_file, "WRITEBACK_BYTES", chunk)
    calls = []

    def record(fd, offset, nbytes, flags):
        calls.append((offset, nbytes, flags, os.pread(fd, nbytes, offset)))
        return 0

    monkeypatch.setattr(atomic_file, "_sync_file_range", record if early else None)
    payloads = _writes(rng, chunk)
    target = tmp_path / "f.bin"
    target.write_bytes(b"old contents")
    with atomic_file.atomic_write(target) as f:
        for payload in payloads:
            f.write(payload)
        f.seek(5)
        f.write(b"PATCH")
    expected = bytearray(b"".join(payloads))
    expected[5:10] = b"PATCH"
    assert target.read_bytes() == bytes(expected)
    assert os.listdir(tmp_path) == ["f.bin"]
    if not early:
        assert calls == []
        return
    # each write of at least one chunk: its chunks in order, each already in the file
    expected_calls, offset = [], 0
    for payload in payloads:
        if len(payload) >= chunk:
            for start in range(0, len(payload), chunk):
                piece = payload[start:start + chunk]
                expected_calls.append((offset + start, len(piece), 2, piece))
        offset += len(payload)
    assert calls == expected_calls


@pytest.mark.skipif(atomic_file._sync_file_range is None, reason="Linux's sync_file_range")
def test_the_real_sync_file_range(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic_file, "WRITEBACK_BYTES", 1 << 16)
    data = np.random.default_rng(3).bytes(5 * (1 << 16) + 123)
    with atomic_file.atomic_write(tmp_path / "f.bin") as f:
        f.write(data)
    assert (tmp_path / "f.bin").read_bytes() == data


@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failure_leaves_the_previous_file(tmp_path, exc):
    target = tmp_path / "f.bin"
    target.write_bytes(b"previous")
    with pytest.raises(type(exc)):
        with atomic_file.atomic_write(target) as f:
            f.write(np.random.default_rng(0).bytes(3 << 20))
            raise exc
    assert target.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_folder_errors_name_the_target(tmp_path):
    with pytest.raises(FileNotFoundError, match="cannot save the report.*r.txt"):
        with atomic_file.atomic_write(tmp_path / "missing" / "r.txt", what="the report"):
            pass
    with pytest.raises(IsADirectoryError, match="cannot save the report over a folder"):
        with atomic_file.atomic_write(tmp_path, what="the report"):
            pass


def test_the_container_crc_is_zips_crc32():
    """Whichever CRC-32 the container uses (zlib-ng's when installed) is zip's."""
    rng = np.random.default_rng(5)
    for n in [0, 1, 7, 64, 1000, 1 << 20]:
        data = rng.bytes(n)
        start = int(rng.integers(0, 2**32))
        assert container.crc32(data, start) == zlib.crc32(data, start)


# -------------------------------------------------- crashes, concurrent writers, file mode
_SAVE_LOOP = """
import sys
import numpy as np
import fastnn
path, version, count = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
model = fastnn.Sequential([fastnn.Dense(700, 700), fastnn.Dense(700, 3)], seed=0)
model.params[:] = version
model.save(path)
print("saved", flush=True)
for _ in range(count):
    model.save(path)
"""


def _temporaries(folder):
    return sorted(n for n in os.listdir(folder) if n.endswith(".tmp"))


def _load_whole(path, versions):
    """The model at ``path`` loads whole and holds one of the saved ``versions``."""
    import fastnn

    params = fastnn.load(path).params
    assert params.shape == (700 * 700 + 700 + 3 * 700 + 3,)
    assert any(np.all(params == v) for v in versions), params[:3]


def test_saves_killed_at_random_moments_leave_no_temporary_file(tmp_path):
    """SIGKILL a process that saves a 2 MB model in a loop, 12 times at random moments:
    the kills leave temporary files (the test would prove nothing otherwise), the next
    save removes them all, and the model loads whole every time."""
    import signal
    import subprocess
    import sys
    import time

    import fastnn

    rng = np.random.default_rng(36)
    path = tmp_path / "m.fnn"
    left = set()
    for trial in range(12):
        child = subprocess.Popen([sys.executable, "-c", _SAVE_LOOP, str(path), str(trial + 1),
                                  "100000"], stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline() == "saved\n"
        time.sleep(rng.uniform(0, 0.05))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        left.update(_temporaries(tmp_path))
        _load_whole(path, range(1, trial + 2))
    assert len(left) >= 3, left
    model = fastnn.Sequential([fastnn.Dense(700, 700), fastnn.Dense(700, 3)], seed=0)
    model.params[:] = 99
    model.save(path)
    assert os.listdir(tmp_path) == ["m.fnn"]
    _load_whole(path, [99])


def test_two_processes_saving_to_one_path(tmp_path):
    """Two processes save their own version to one path 40 times each while this one
    loads it: every load is whole, the last file is one of the two versions, and no
    temporary file is left (neither writer's sweep removed the other's file in progress,
    or its rename would have failed)."""
    import subprocess
    import sys

    path = tmp_path / "m.fnn"
    writers = [subprocess.Popen([sys.executable, "-c", _SAVE_LOOP, str(path), str(v), "40"],
                                stdout=subprocess.PIPE, text=True) for v in (1, 2)]
    for writer in writers:
        assert writer.stdout.readline() == "saved\n"
    loads = 0
    while any(w.poll() is None for w in writers):
        _load_whole(path, [1, 2])
        loads += 1
    for writer in writers:
        assert writer.wait() == 0
        writer.stdout.close()
    assert loads >= 1
    _load_whole(path, [1, 2])
    assert os.listdir(tmp_path) == ["m.fnn"]


@pytest.fixture
def umask():
    """Set the process's umask for one test (restored afterwards)."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


def _mode(path):
    return os.stat(path).st_mode & 0o7777


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_a_new_file_gets_the_mode_open_gives(tmp_path, umask, mask):
    import fastnn

    umask(mask)
    with open(tmp_path / "plain.txt", "w"):
        pass
    expected = _mode(tmp_path / "plain.txt")
    assert expected == 0o666 & ~mask
    with atomic_file.atomic_write(tmp_path / "f.bin") as f:
        f.write(b"data")
    fastnn.Sequential([fastnn.Dense(3, 2)], seed=1).save(tmp_path / "m.fnn")
    assert _mode(tmp_path / "f.bin") == expected
    assert _mode(tmp_path / "m.fnn") == expected


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o600, 0o444])
def test_replacing_a_file_keeps_its_mode(tmp_path, umask, mode):
    import fastnn

    umask(0o077)
    target = tmp_path / "m.fnn"
    target.write_bytes(b"previous")
    target.chmod(mode)
    fastnn.Sequential([fastnn.Dense(3, 2)], seed=1).save(target)
    assert _mode(target) == mode
    assert fastnn.load(target).params.shape == (8,)


def test_the_sweep_removes_only_stale_temporary_files_of_the_target(tmp_path):
    """Stale files of the target (an earlier fastnn's, or a killed save's) go; files of
    other targets, other names, links and a save in progress (locked, in this process and
    in another) stay."""
    import subprocess
    import sys

    stale = [".m.fnn.abcdefgh.tmp", ".m.fnn.z9_0y8x7.tmp"]
    kept = ["m.fnn", ".m.fnn.backup.tmp", ".m.fnn.abcdefgh.tmp.1", ".other.fnn.abcdefgh.tmp",
            "m.fnn.abcdefgh.tmp", ".m.fnn.ABCDEFGH.tmp", ".m.fnn.abcdefg.tmp"]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"x")
    os.symlink(tmp_path / "m.fnn", tmp_path / ".m.fnn.linklink.tmp")
    kept.append(".m.fnn.linklink.tmp")
    with atomic_file.atomic_write(tmp_path / "m.fnn") as f:   # sweeps before it writes
        in_progress = set(_temporaries(tmp_path)) - set(kept)
        assert len(in_progress) == 1
        f.write(b"new")
        atomic_file.remove_stale_temporaries(str(tmp_path), r"m\.fnn")
        subprocess.run([sys.executable, "-c", "import sys; from fastnn import atomic_file; "
                        "atomic_file.remove_stale_temporaries(sys.argv[1], r'm\\.fnn')",
                        str(tmp_path)], check=True)
        assert sorted(os.listdir(tmp_path)) == sorted(kept + list(in_progress))
    assert sorted(os.listdir(tmp_path)) == sorted(kept)
    assert (tmp_path / "m.fnn").read_bytes() == b"new"


def test_a_new_file_swept_before_its_lock_is_replaced_by_another(tmp_path, monkeypatch):
    """The window between creating a temporary file and locking it: a sweep that
    removes the file there makes the writer start again under a new name."""
    taken = []
    lock = atomic_file._lock

    def swept_first(fd, wait):
        if wait and not taken:
            taken.append(os.listdir(tmp_path))
            for name in _temporaries(tmp_path):
                os.unlink(tmp_path / name)
        return lock(fd, wait)

    monkeypatch.setattr(atomic_file, "_lock", swept_first)
    with atomic_file.atomic_write(tmp_path / "f.bin") as f:
        f.write(b"data")
    assert len(taken) == 1 and len(taken[0]) == 1
    assert os.listdir(tmp_path) == ["f.bin"]
    assert (tmp_path / "f.bin").read_bytes() == b"data"


def test_checkpoint_sweeps_the_files_of_every_epoch(tmp_path):
    import fastnn

    names = [".model-003.fnn.abcdefgh.tmp", ".model-17.fnn.abcdefgh.tmp"]
    others = [".model.fnn.abcdefgh.tmp", ".best.fnn.abcdefgh.tmp", "model-003.fnn"]
    for name in names + others:
        (tmp_path / name).write_bytes(b"x")
    model = fastnn.Sequential([fastnn.Dense(3, 2)], seed=1)
    fastnn.Checkpoint(str(tmp_path / "model-{epoch:03d}.fnn")).on_train_begin(model, None,
                                                                               False)
    assert sorted(os.listdir(tmp_path)) == sorted(others)
