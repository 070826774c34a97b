"""Reading the files a user hands xnorgen (net.yaml, weights .npz, input .npy) as a stranger's files.

Needs: a path. Guarantees: only regular files are opened (a FIFO or a device would hang or
never end); no more than the caller's byte budget is read; arrays are checked from their
.npy headers (dtype, shape, size) before their data is read, and only the members asked for
are read; every failure is an XnorgenError naming the file.
"""
from __future__ import annotations

import os
import stat
import zipfile
from contextlib import contextmanager
from math import prod

import numpy as np

from xnorgen import limits
from xnorgen.errors import XnorgenError

#: dtype kinds that are real numbers: signed, unsigned, float (not bool, complex, dates, text).
REAL_KINDS = "iuf"


@contextmanager
def open_regular(path, what: str, max_bytes: int):
    """A binary file object for a regular file of at most max_bytes. O_NONBLOCK so opening a
    FIFO cannot block; the fstat of the opened descriptor decides, so no swap can race it."""
    where = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise XnorgenError(where, f"cannot read {what}: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise XnorgenError(where, f"cannot read {what}: not a regular file")
        if st.st_size > max_bytes:
            raise XnorgenError(where, f"{what} is {st.st_size} bytes, more than the limit of {max_bytes}")
        os.set_blocking(fd, True)
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        yield f


def read_text(path, what: str, max_bytes: int = limits.MAX_DESCRIPTION_BYTES) -> str:
    """The whole file as UTF-8 text (a BOM is allowed)."""
    with open_regular(path, what, max_bytes) as f:
        try:
            data = f.read(max_bytes + 1)
        except OSError as e:
            raise XnorgenError(str(path), f"cannot read {what}: {e.strerror or e}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise XnorgenError(str(path), f"{what} is not UTF-8 text (byte {e.start})") from None


def _read_header(f, where: str, name: str, real_only: bool = True):
    """(shape, dtype) from an .npy stream, positioned at the data afterwards. real_only=False lets
    any plain dtype through (the caller checks it; objects need pickle and are always refused)."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unknown .npy version {version}")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise XnorgenError(where, f"{name}: not a readable .npy array ({_short(e)})") from None
    if dtype.hasobject or (real_only and (dtype.kind not in REAL_KINDS or dtype.fields is not None
                                          or dtype.subdtype is not None)):
        raise XnorgenError(where, f"{name}: must hold real numbers, got dtype {dtype}")
    if fortran:
        raise XnorgenError(where, f"{name}: Fortran-ordered arrays are not supported; save it in C order")
    return tuple(shape), dtype


def _read_data(f, shape, dtype, where: str, name: str) -> np.ndarray:
    n = prod(shape)
    if n > limits.MAX_TENSOR_ELEMENTS:
        raise XnorgenError(where, f"{name}: {n} elements, more than the limit of {limits.MAX_TENSOR_ELEMENTS}")
    nbytes = n * dtype.itemsize
    try:
        data = f.read(nbytes)
    except (OSError, EOFError, zipfile.BadZipFile, ValueError) as e:    # zlib/CRC errors included
        raise XnorgenError(where, f"{name}: damaged data ({_short(e)})") from None
    if len(data) != nbytes:
        raise XnorgenError(where, f"{name}: truncated ({len(data)} of {nbytes} bytes)")
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def _short(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__


class NpzArrays:
    """The members of a weights .npz, read one at a time after their headers are checked.

    with NpzArrays(path) as npz: npz.names; npz.read("conv1.weight", expected_shape)
    (open() does what entering does, for a caller that wants to name its own errors first)."""

    def __init__(self, path, what: str = "weights"):
        self.path, self.what = path, what
        self._cm = open_regular(path, what, limits.MAX_ARRAY_FILE_BYTES)
        self._zip = None

    def __enter__(self):
        return self if self._zip is not None else self.open()

    def open(self):
        """Open the file and read the zip's directory (also done by entering the context)."""
        f = self._cm.__enter__()
        where = str(self.path)
        try:
            self._zip = zipfile.ZipFile(f)
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            self._cm.__exit__(None, None, None)
            raise XnorgenError(where, f"cannot read {self.what}: not an .npz archive ({_short(e)})") from None
        if len(infos) > limits.MAX_NPZ_MEMBERS:
            self._cm.__exit__(None, None, None)
            raise XnorgenError(where, f"{len(infos)} members, more than the limit of {limits.MAX_NPZ_MEMBERS}")
        self._members = {}
        for info in infos:
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            self._members.setdefault(key, info)
        return self

    def __exit__(self, *exc):
        self._zip.close()
        return self._cm.__exit__(*exc)

    @property
    def names(self):
        """The member names without ".npy" (a set-like view: `key in npz.names` is one lookup)."""
        return self._members.keys()

    def read(self, key: str, expected_shape: tuple[int, ...] | None = None, where: str | None = None) -> np.ndarray:
        """The member's array; its header is checked (real dtype, expected shape) before the data is
        read. Errors name `where` (default: the file)."""
        where = where or str(self.path)
        info = self._members[key]
        if info.file_size > limits.MAX_ARRAY_FILE_BYTES:
            raise XnorgenError(where, f"{key!r}: {info.file_size} bytes uncompressed, more than the limit")
        with self._open(key) as f:
            shape, dtype = _read_header(f, where, repr(key))
            if expected_shape is not None and shape != tuple(expected_shape):
                raise XnorgenError(where, f"array {key!r} has shape {list(shape)}, expected {list(expected_shape)}")
            return _read_data(f, shape, dtype, where, repr(key))

    def _open(self, key):
        try:
            return self._zip.open(self._members[key])
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, RuntimeError) as e:
            raise XnorgenError(str(self.path), f"{key!r}: cannot open the member ({_short(e)})") from None


def read_npy(path, what: str = "input array", max_bytes: int = limits.MAX_INPUT_BYTES) -> np.ndarray:
    """One .npy array (any plain dtype: reference.split_batch is the check of what an input may
    hold), its header read before its data, the file at most max_bytes."""
    where = str(path)
    with open_regular(path, what, max_bytes) as f:
        head = f.read(6)
        if head[:2] == b"PK":
            raise XnorgenError(where, "an .npz archive, not one .npy array")
        f.seek(0)
        shape, dtype = _read_header(f, where, what, real_only=False)
        return _read_data(f, shape, dtype, where, what).copy()
