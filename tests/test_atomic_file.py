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
