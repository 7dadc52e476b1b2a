"""Bounds-checked reader and writer for RELOAD's presentation language (RFC 6940 §6.3.1).

Every structure codec in :mod:`reload_core.wire` is written with these two classes:
``Reader.pull_*`` on decode and ``Writer.push_*`` on encode, in the style of aioquic's
``Buffer``. Variable-length vectors ``T name<0..2^N-1>`` carry a big-endian length
prefix of ``ceil(N/8)`` bytes; fixed arrays ``T name[N]`` carry none.

Malformed input raises :class:`DecodeError` and nothing else: it carries the RELOAD
error code to answer with (RFC 6940 §6.3.3.1), the field that was wrong and the
absolute byte offset in the decoded buffer.
"""

from __future__ import annotations

import struct

from reload_core.wire.codes import ErrorCode

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")


class DecodeError(Exception):
    """The peer's bytes are malformed (a ``RemoteProtocolError`` in h11's terms).

    ``error_code`` is what to answer with; ``field`` names the structure member and
    ``offset`` is the byte offset where decoding failed. ``drop`` is true where the
    RFC says the message is to be discarded with no response (e.g. an unknown
    ``select`` type, §6.3.1.1).
    """

    def __init__(
        self,
        reason: str,
        *,
        field: str = "",
        offset: int = 0,
        error_code: ErrorCode = ErrorCode.Error_Invalid_Message,
        drop: bool = False,
    ) -> None:
        self.reason = reason
        self.field = field
        self.offset = offset
        self.error_code = error_code
        self.drop = drop
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{where}{self.reason} (at byte offset {self.offset})"


class EncodeError(ValueError):
    """We were asked to encode a value that does not fit its field (our own mistake)."""


class Reader:
    """Reads big-endian integers and vectors from ``data[start:end]``, checking bounds."""

    __slots__ = ("_data", "_end", "_pos")

    def __init__(self, data: bytes, start: int = 0, end: int | None = None) -> None:
        self._data = data
        self._pos = start
        self._end = len(data) if end is None else end

    @property
    def offset(self) -> int:
        """Absolute offset of the next byte to read."""
        return self._pos

    def remaining(self) -> int:
        return self._end - self._pos

    def eof(self) -> bool:
        return self._pos >= self._end

    def fail(self, reason: str, field: str, **kw: object) -> DecodeError:
        """Build a :class:`DecodeError` at the current offset (caller raises it)."""
        return DecodeError(reason, field=field, offset=self._pos, **kw)  # type: ignore[arg-type]

    def _need(self, n: int, field: str) -> int:
        pos = self._pos
        if n > self._end - pos:
            raise DecodeError(f"needs {n} bytes, only {self._end - pos} remain", field=field, offset=pos)
        self._pos = pos + n
        return pos

    def pull_uint8(self, field: str) -> int:
        pos = self._need(1, field)
        return self._data[pos]

    def pull_uint16(self, field: str) -> int:
        pos = self._need(2, field)
        return int(_U16.unpack_from(self._data, pos)[0])

    def pull_uint24(self, field: str) -> int:
        pos = self._need(3, field)
        return int.from_bytes(self._data[pos : pos + 3], "big")

    def pull_uint32(self, field: str) -> int:
        pos = self._need(4, field)
        return int(_U32.unpack_from(self._data, pos)[0])

    def pull_uint64(self, field: str) -> int:
        pos = self._need(8, field)
        return int(_U64.unpack_from(self._data, pos)[0])

    def pull_uint128(self, field: str) -> int:
        pos = self._need(16, field)
        return int.from_bytes(self._data[pos : pos + 16], "big")

    def pull_struct(self, layout: struct.Struct, field: str) -> tuple[int, ...]:
        """Several fixed-size fields at once, as ``layout`` (big-endian) reads them."""
        pos = self._need(layout.size, field)
        return layout.unpack_from(self._data, pos)

    def pull_boolean(self, field: str) -> bool:
        """``enum { false(0), true(1), (255) } Boolean`` (§6.3.1.1); other values are errors."""
        pos = self._pos
        value = self.pull_uint8(field)
        if value > 1:
            raise DecodeError(f"Boolean must be 0 or 1, got {value}", field=field, offset=pos)
        return value == 1

    def pull_bytes(self, n: int, field: str) -> bytes:
        """A fixed-length ``opaque name[n]``."""
        pos = self._need(n, field)
        return bytes(self._data[pos : pos + n])

    def pull_length(self, length_bytes: int, field: str) -> int:
        if length_bytes == 1:
            return self.pull_uint8(field)
        if length_bytes == 2:
            return self.pull_uint16(field)
        if length_bytes == 3:
            return self.pull_uint24(field)
        return self.pull_uint32(field)

    def pull_opaque(self, length_bytes: int, field: str, *, min_len: int = 0) -> bytes:
        """A variable-length ``opaque name<min..2^(8*length_bytes)-1>``."""
        start = self._pos
        n = self.pull_length(length_bytes, field + ".length")
        if n < min_len:
            raise DecodeError(f"length {n} below minimum {min_len}", field=field, offset=start)
        return self.pull_bytes(n, field)

    def pull_vector(self, length_bytes: int, field: str) -> Reader:
        """A vector ``T name<0..2^N-1>``: returns a sub-reader over exactly its bytes.

        The caller decodes elements until ``sub.eof()``; a final element that overruns
        the vector fails inside the sub-reader, which cannot read past the vector.
        """
        n = self.pull_length(length_bytes, field + ".length")
        pos = self._need(n, field)
        return Reader(self._data, pos, pos + n)

    def sub_reader(self, n: int, field: str) -> Reader:
        """A sub-reader over the next ``n`` bytes (for lengths carried elsewhere)."""
        pos = self._need(n, field)
        return Reader(self._data, pos, pos + n)

    def bytes_between(self, start: int, end: int) -> bytes:
        """The bytes from absolute offset ``start`` to ``end`` (already read)."""
        return bytes(self._data[start:end])

    def expect_end(self, field: str) -> None:
        """Reject trailing bytes after a structure or inside a length-delimited block."""
        if self._pos != self._end:
            raise DecodeError(
                f"{self._end - self._pos} unexpected trailing bytes", field=field, offset=self._pos
            )


class Writer:
    """Appends big-endian integers and vectors to a growing ``bytearray``."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def data(self) -> bytes:
        return bytes(self._buf)

    def __len__(self) -> int:
        return len(self._buf)

    @staticmethod
    def _check(value: int, bits: int, field: str) -> None:
        if not 0 <= value < (1 << bits):
            raise EncodeError(f"{field}: {value} does not fit in uint{bits}")

    def push_uint8(self, value: int, field: str = "uint8") -> None:
        self._check(value, 8, field)
        self._buf.append(value)

    def push_uint16(self, value: int, field: str = "uint16") -> None:
        self._check(value, 16, field)
        self._buf += _U16.pack(value)

    def push_uint24(self, value: int, field: str = "uint24") -> None:
        self._check(value, 24, field)
        self._buf += value.to_bytes(3, "big")

    def push_uint32(self, value: int, field: str = "uint32") -> None:
        self._check(value, 32, field)
        self._buf += _U32.pack(value)

    def push_uint64(self, value: int, field: str = "uint64") -> None:
        self._check(value, 64, field)
        self._buf += _U64.pack(value)

    def push_uint128(self, value: int, field: str = "uint128") -> None:
        self._check(value, 128, field)
        self._buf += value.to_bytes(16, "big")

    def push_boolean(self, value: bool) -> None:
        self._buf.append(1 if value else 0)

    def push_bytes(self, data: bytes, n: int | None = None, field: str = "opaque") -> None:
        """A fixed-length ``opaque name[n]`` (``n`` checked when given)."""
        if n is not None and len(data) != n:
            raise EncodeError(f"{field}: needs exactly {n} bytes, got {len(data)}")
        self._buf += data

    def push_length(self, n: int, length_bytes: int, field: str) -> None:
        if n >= 1 << (8 * length_bytes):
            raise EncodeError(f"{field}: length {n} does not fit in {length_bytes} bytes")
        self._buf += n.to_bytes(length_bytes, "big")

    def push_opaque(self, data: bytes, length_bytes: int, field: str = "opaque") -> None:
        """A variable-length ``opaque name<0..2^(8*length_bytes)-1>``."""
        self.push_length(len(data), length_bytes, field)
        self._buf += data

    def vector(self, length_bytes: int, field: str = "vector") -> _Vector:
        """Write the elements inside the ``with`` block; the length prefix is filled in after."""
        return _Vector(self._buf, length_bytes, field)

    def reserve(self, n: int) -> int:
        """Reserve ``n`` zero bytes to patch later with :meth:`patch`; returns their offset."""
        start = len(self._buf)
        self._buf += bytes(n)
        return start

    def patch(self, offset: int, data: bytes) -> None:
        self._buf[offset : offset + len(data)] = data


class _Vector:
    """The ``with`` block of :meth:`Writer.vector` (a class: every message encodes several,
    and a generator-based context manager costs several times more)."""

    __slots__ = ("_buf", "_field", "_length_bytes", "_start")

    def __init__(self, buf: bytearray, length_bytes: int, field: str) -> None:
        self._buf = buf
        self._length_bytes = length_bytes
        self._field = field
        self._start = 0

    def __enter__(self) -> None:
        self._start = len(self._buf)
        self._buf += bytes(self._length_bytes)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            return
        length_bytes, start = self._length_bytes, self._start
        n = len(self._buf) - start - length_bytes
        if n >= 1 << (8 * length_bytes):
            raise EncodeError(f"{self._field}: length {n} does not fit in {length_bytes} bytes")
        self._buf[start : start + length_bytes] = n.to_bytes(length_bytes, "big")
