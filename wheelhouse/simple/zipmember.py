"""One member of a zip archive read through byte ranges, never the whole archive: the end of
central directory record, the central directory, then the member's local header and data.

No I/O of its own: the caller hands in the archive's tail and a ``read(start, length)``, so
the same code serves HTTP Range requests and tests. Malformed archives raise BadZipFile.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from zipfile import BadZipFile

#: Reads exactly ``length`` bytes at ``start`` (or raises).
ReadRange = Callable[[int, int], bytes]

_EOCD = struct.Struct("<4s4H2LH")
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_LOCAL = struct.Struct("<4s5H3L2H")
_MAX16, _MAX32 = 0xFFFF, 0xFFFFFFFF

#: How much of the end to ask for first: the EOCD record with the longest possible comment
#: and a zip64 locator. Small wheels' central directories fit in it too, saving a request.
TAIL_BYTES = _EOCD.size + _MAX16 + _EOCD64_LOCATOR.size + _EOCD64.size


@dataclass(frozen=True, kw_only=True)
class Member:
    name: str
    header_offset: int
    compressed_size: int
    size: int
    method: int
    crc: int
    flags: int


def _directory_location(tail: bytes, total: int, read: ReadRange) -> tuple[int, int]:
    """(offset, size) of the central directory."""
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or pos + _EOCD.size > len(tail):
        raise BadZipFile("no end of central directory record")
    _sig, _disk, _cd_disk, _n_disk, count, cd_size, cd_offset, _comment = _EOCD.unpack_from(
        tail, pos)
    if _MAX32 not in (cd_size, cd_offset) and count != _MAX16:
        return cd_offset, cd_size
    # zip64: the locator sits right before the EOCD and points at the zip64 record.
    at = pos - _EOCD64_LOCATOR.size
    if at < 0 or tail[at:at + 4] != b"PK\x06\x07":
        raise BadZipFile("zip64 archive without a zip64 end of central directory locator")
    record_offset = _EOCD64_LOCATOR.unpack_from(tail, at)[2]
    record = _slice(tail, total, record_offset, _EOCD64.size, read)
    fields = _EOCD64.unpack(record)
    if fields[0] != b"PK\x06\x06":
        raise BadZipFile("bad zip64 end of central directory record")
    return fields[9], fields[8]


def _slice(tail: bytes, total: int, start: int, length: int, read: ReadRange) -> bytes:
    """Bytes [start, start+length) from the tail we hold, or read."""
    tail_start = total - len(tail)
    if start < 0 or start + length > total:
        raise BadZipFile("a zip record points outside the archive")
    if start >= tail_start:
        return tail[start - tail_start:start - tail_start + length]
    data = read(start, length)
    if len(data) != length:
        raise BadZipFile("short read")
    return data


def _zip64_extra(extra: bytes, size: int, csize: int, offset: int) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<2H", extra, pos)
        if tag == 1:
            values = iter(struct.unpack_from(f"<{length // 8}Q", extra, pos + 4))
            size = next(values) if size == _MAX32 else size
            csize = next(values) if csize == _MAX32 else csize
            offset = next(values) if offset == _MAX32 else offset
            break
        pos += 4 + length
    return size, csize, offset


def central_directory(data: bytes) -> list[Member]:
    out = []
    pos = 0
    while pos + _CENTRAL.size <= len(data) and data[pos:pos + 4] == b"PK\x01\x02":
        (_sig, _made, _need, flags, method, _time, _date, crc, csize, size, nlen, elen, clen,
         _disk, _iattr, _eattr, offset) = _CENTRAL.unpack_from(data, pos)
        raw = data[pos + _CENTRAL.size:pos + _CENTRAL.size + nlen]
        name = raw.decode("utf-8" if flags & 0x800 else "cp437", "replace")
        extra = data[pos + _CENTRAL.size + nlen:pos + _CENTRAL.size + nlen + elen]
        try:
            size, csize, offset = _zip64_extra(extra, size, csize, offset)
        except (struct.error, StopIteration):
            raise BadZipFile(f"bad zip64 extra field for {name}") from None
        out.append(Member(name=name, header_offset=offset, compressed_size=csize, size=size,
                          method=method, crc=crc, flags=flags))
        pos += _CENTRAL.size + nlen + elen + clen
    return out


def read_member(
    tail: bytes,
    total: int,
    read: ReadRange,
    choose: Callable[[list[str]], str],
    *,
    limit: int,
) -> bytes:
    """The uncompressed bytes of the member ``choose`` picks from the archive's names.

    ``tail`` is the last bytes of the archive (``TAIL_BYTES``, or all of a smaller one) and
    ``total`` its size. Nothing larger than ``limit`` bytes is read or inflated.
    """
    cd_offset, cd_size = _directory_location(tail, total, read)
    if cd_size > limit:
        raise BadZipFile(f"the central directory is larger than {limit} bytes")
    members = {m.name: m for m in central_directory(_slice(tail, total, cd_offset, cd_size,
                                                           read))}
    member = members[choose(list(members))]
    if member.flags & 1:
        raise BadZipFile(f"{member.name} is encrypted")
    if member.compressed_size > limit or member.size > limit:
        raise BadZipFile(f"{member.name} is larger than {limit} bytes")
    # The local header's extra field may differ from the central one: read a little more
    # than the header, and again only if that was not enough.
    guess = min(_LOCAL.size + len(member.name.encode()) + 256 + member.compressed_size,
                total - member.header_offset)
    head = _slice(tail, total, member.header_offset, guess, read)
    if len(head) < _LOCAL.size or head[:4] != b"PK\x03\x04":
        raise BadZipFile(f"bad local header for {member.name}")
    nlen, elen = _LOCAL.unpack_from(head)[9:11]
    start = _LOCAL.size + nlen + elen
    data = head[start:start + member.compressed_size]
    if len(data) < member.compressed_size:
        data = _slice(tail, total, member.header_offset + start, member.compressed_size, read)
    if member.method == 8:
        inflater = zlib.decompressobj(-15)
        try:
            data = inflater.decompress(data, limit + 1)
        except zlib.error as e:
            raise BadZipFile(f"cannot inflate {member.name}: {e}") from None
    elif member.method != 0:
        raise BadZipFile(f"{member.name} uses compression method {member.method}")
    if len(data) != member.size or zlib.crc32(data) != member.crc:
        raise BadZipFile(f"{member.name} does not match its size and CRC")
    return data
