"""The ``.npz`` container of model files: a zip of ``.npy`` members, stored (not
compressed), that ``np.load`` reads like any ``np.savez`` output, written and read here
by a small strict codec so that

- every byte is checked: each member's data by its zip CRC-32, and everything else (zip
  headers, ``.npy`` headers, central directory, end records) by a CRC-32 stored in the
  archive comment (``fastnn-crc32:xxxxxxxx``) — a flipped bit anywhere is an error;
- arrays go straight between memory and the file: one CRC pass and one write per array
  when saving, one ``readinto`` into the destination and one CRC pass when loading;
- nothing is ever unpickled (members must be plain numeric arrays).

Layout (zip64 throughout, fixed timestamps, no data descriptors):

    [local header, .npy header, array bytes] per member, central directory,
    zip64 end record, zip64 locator, end record, comment
"""
import io
import struct
import threading

import numpy as np

try:   # zlib-ng's CRC-32 (SIMD, ~8x zlib's on x86-64), when installed: pip install zlib-ng
    from zlib_ng.zlib_ng import crc32
except ImportError:
    from zlib import crc32

_LOCAL = struct.Struct("<IHHHHHIIIHH")           # signature ... name length, extra length
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_ZIP64_EXTRA = struct.Struct("<HHQQQ")            # id 1, size 24: usize, csize, offset
_ZIP64_LOCAL_EXTRA = struct.Struct("<HHQQ")       # id 1, size 16: usize, csize
_ZIP64_END = struct.Struct("<IQHHIIQQQQ")
_ZIP64_LOCATOR = struct.Struct("<IIQI")
_END = struct.Struct("<IHHHHIIH")
_VERSION = 45                                     # zip64
_DOS_DATE = (0 << 9) | (1 << 5) | 1               # 1980-01-01, 00:00
_COMMENT = b"fastnn-crc32:%08x"
_COMMENT_SIZE = len(_COMMENT % 0)
_NUMERIC = "biuf"


class CorruptContainer(Exception):
    """The file is not an intact container of this codec."""


def _npy_header(array):
    """The .npy v1/v2 header bytes of ``array`` (what np.save writes before the data)."""
    buffer = io.BytesIO()
    d = np.lib.format.header_data_from_array_1_0(array)
    try:
        np.lib.format.write_array_header_1_0(buffer, d)
    except ValueError:   # a header longer than v1 allows
        buffer = io.BytesIO()
        np.lib.format.write_array_header_2_0(buffer, d)
    return buffer.getvalue()


#: arrays at least this large are checksummed in a second thread while they are written
#: (zlib's and zlib-ng's crc32 and file writes all release the GIL)
_OVERLAP_BYTES = 1 << 20


def _local_header(filename, crc, size):
    return _LOCAL.pack(0x04034B50, _VERSION, 0, 0, 0, _DOS_DATE, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                       len(filename), _ZIP64_LOCAL_EXTRA.size) + filename + \
        _ZIP64_LOCAL_EXTRA.pack(1, 16, size, size)


def _crc_while_writing(f, header, data):
    """f.write(data) and crc32(header + data), the checksum in a second thread for large
    data (one pass over memory each, side by side)."""
    if len(data) < _OVERLAP_BYTES:
        f.write(data)
        return crc32(data, crc32(header))
    result = []
    worker = threading.Thread(target=lambda: result.append(crc32(data, crc32(header))))
    worker.start()
    try:
        f.write(data)
    finally:
        worker.join()
    return result[0]


def write(f, arrays):
    """Write ``arrays`` (name -> C-contiguous numeric ndarray) to the binary file ``f``
    (seekable, positioned at 0) as the container described above. Each member's CRC is
    computed while its data are written and patched into its local header afterwards."""
    members, offset = [], 0
    for name, array in arrays.items():
        if not array.flags.c_contiguous or array.dtype.kind not in _NUMERIC:
            raise TypeError(f"member {name!r}: only C-contiguous numeric arrays are stored")
        filename = f"{name}.npy".encode()
        header = _npy_header(array)
        data = memoryview(array).cast("B") if array.size else b""
        size = len(header) + len(data)
        f.write(_local_header(filename, 0, size) + header)
        crc = _crc_while_writing(f, header, data)
        members.append((filename, header, crc, size, offset))
        offset += _LOCAL.size + len(filename) + _ZIP64_LOCAL_EXTRA.size + size
    meta_crc = 0
    for filename, header, crc, size, local_offset in members:
        local = _local_header(filename, crc, size)
        f.seek(local_offset)
        f.write(local)
        meta_crc = crc32(header, crc32(local, meta_crc))
    f.seek(offset)
    tail = []
    for filename, header, crc, size, local_offset in members:
        tail.append(_CENTRAL.pack(0x02014B50, _VERSION, _VERSION, 0, 0, 0, _DOS_DATE, crc,
                                  0xFFFFFFFF, 0xFFFFFFFF, len(filename), _ZIP64_EXTRA.size, 0,
                                  0, 0, 0, 0xFFFFFFFF) + filename +
                    _ZIP64_EXTRA.pack(1, 24, size, size, local_offset))
    directory_size = sum(len(t) for t in tail)
    end64_offset = offset + directory_size
    tail.append(_ZIP64_END.pack(0x06064B50, _ZIP64_END.size - 12, _VERSION, _VERSION, 0, 0,
                                len(members), len(members), directory_size, offset))
    tail.append(_ZIP64_LOCATOR.pack(0x07064B50, 0, end64_offset, 1))
    tail.append(_END.pack(0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF,
                          _COMMENT_SIZE))
    tail = b"".join(tail)
    f.write(tail + _COMMENT % crc32(tail, meta_crc))


class Reader:
    """The members of a container file ``f`` (binary, seekable) of ``size`` bytes. The
    structure and every metadata byte are verified on construction; ``read(name)``
    reads one member's array (into ``out`` when given), verifying its CRC-32."""

    def __init__(self, f, size):
        self.f = f
        tail = _END.size + _COMMENT_SIZE
        if size < tail + _ZIP64_END.size + _ZIP64_LOCATOR.size:
            raise CorruptContainer("too short to be a model file")
        f.seek(size - tail)
        end = f.read(tail)
        fields = _END.unpack(end[:_END.size])
        comment = end[_END.size:]
        if fields[0] != 0x06054B50 or fields[7] != _COMMENT_SIZE or \
                not comment.startswith(_COMMENT[:13]):
            raise CorruptContainer("not a fastnn model container (no end record with its "
                                   "checksum)")
        digits = comment[13:]
        if not all(c in b"0123456789abcdef" for c in digits):   # int() would take "D" for "d"
            raise CorruptContainer("its checksum record is damaged")
        expected_crc = int(digits, 16)
        locator_offset = size - tail - _ZIP64_LOCATOR.size
        f.seek(locator_offset)
        locator = _ZIP64_LOCATOR.unpack(f.read(_ZIP64_LOCATOR.size))
        end64_offset = locator[2]
        if locator[0] != 0x07064B50 or end64_offset + _ZIP64_END.size != locator_offset:
            raise CorruptContainer("damaged zip64 end locator")
        f.seek(end64_offset)
        end64_bytes = f.read(_ZIP64_END.size)
        end64 = _ZIP64_END.unpack(end64_bytes)
        count, directory_size, directory_offset = end64[6], end64[8], end64[9]
        if end64[0] != 0x06064B50 or directory_offset + directory_size != end64_offset or \
                count > 64:
            raise CorruptContainer("damaged zip64 end record")
        f.seek(directory_offset)
        directory = f.read(directory_size)
        entries, position = [], 0
        for _ in range(count):
            record = _CENTRAL.unpack_from(directory, position)
            name_length = record[10]
            position += _CENTRAL.size
            filename = directory[position:position + name_length]
            position += name_length
            extra = _ZIP64_EXTRA.unpack_from(directory, position)
            position += _ZIP64_EXTRA.size
            entries.append((filename, record[7], extra[2], extra[4]))
        if position != directory_size:
            raise CorruptContainer("damaged central directory")
        # the metadata checksum covers every byte outside the arrays' data, in file order
        self.members, meta_crc, expected_offset = {}, 0, 0
        for filename, crc, size_, local_offset in entries:
            if local_offset != expected_offset:
                raise CorruptContainer("members are not laid out contiguously")
            f.seek(local_offset)
            local = f.read(_LOCAL.size + len(filename) + _ZIP64_LOCAL_EXTRA.size)
            if local != _local_header(filename, crc, size_):
                raise CorruptContainer(f"damaged local header of {filename!r}")
            meta_crc = crc32(local, meta_crc)
            npy_start = f.tell()
            try:
                version = np.lib.format.read_magic(f)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
                    else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read_header(f)
            except Exception as exc:   # any malformed .npy header
                raise CorruptContainer(f"damaged array header of {filename!r} ({exc})") from None
            header_size = f.tell() - npy_start
            f.seek(npy_start)
            header = f.read(header_size)
            meta_crc = crc32(header, meta_crc)
            if fortran or dtype.kind not in _NUMERIC or dtype.hasobject:
                raise CorruptContainer(f"member {filename!r} is not a plain numeric array")
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if header_size + nbytes != size_:
                raise CorruptContainer(f"member {filename!r}: its size does not match its "
                                       "array header")
            name = filename.decode("ascii", "replace")
            if not name.endswith(".npy"):
                raise CorruptContainer(f"member {filename!r} is not an .npy array")
            self.members[name[:-4]] = (dtype, shape, npy_start + header_size, nbytes,
                                       crc32(header), crc)
            expected_offset = npy_start + size_
        if expected_offset != directory_offset:
            raise CorruptContainer("unexpected bytes between the members and the directory")
        meta_crc = crc32(directory, meta_crc)
        meta_crc = crc32(end64_bytes, meta_crc)
        f.seek(locator_offset)
        meta_crc = crc32(f.read(_ZIP64_LOCATOR.size + _END.size), meta_crc)
        if meta_crc != expected_crc:
            raise CorruptContainer("its metadata checksum does not match (damaged file)")

    def shape(self, name):
        dtype, shape = self.members[name][:2]
        return dtype, shape

    def read(self, name, out=None):
        """Member ``name`` as an array (written into ``out``, of its dtype and shape, when
        given), its CRC-32 verified."""
        dtype, shape, start, nbytes, header_crc, crc = self.members[name]
        if out is None:
            out = np.empty(shape, dtype)
        view = memoryview(out).cast("B") if out.size else memoryview(b"")
        self.f.seek(start)
        if nbytes and self.f.readinto(view) != nbytes:
            raise CorruptContainer(f"member {name!r} is truncated")
        if crc32(view, header_crc) != crc:
            raise CorruptContainer(f"member {name!r} fails its CRC-32 check (damaged data)")
        return out
