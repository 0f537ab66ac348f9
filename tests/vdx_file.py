"""Reading and rewriting sections of a saved index file, for tests that corrupt files on purpose
(the layout is docs/format.md's: a 64-byte header, sections, a table of 32-byte entries)."""
from __future__ import annotations

import struct
import zlib


def sections(blob) -> dict:
    """{section id (4 bytes): (offset, length, position of its table entry)}."""
    count, = struct.unpack_from("<I", blob, 40)
    table, = struct.unpack_from("<Q", blob, 48)
    out = {}
    for i in range(count):
        sid, _crc, off, length = struct.unpack_from("<4sIQQ", blob, table + 32 * i)
        out[sid] = (off, length, table + 32 * i)
    return out


def section_bytes(blob, sid) -> bytes:
    off, length, _ = sections(blob)[sid]
    return bytes(blob[off:off + length])


def rewrite(blob, sid, new_bytes, same_length: bool = True) -> bytes:
    """Replace section `sid` by new_bytes (of its length, or shorter with same_length=False) and
    fix every checksum, so only the reader's content checks can catch what changed."""
    blob = bytearray(blob)
    off, length, entry = sections(blob)[sid]
    assert len(new_bytes) == length if same_length else len(new_bytes) <= length
    blob[off:off + len(new_bytes)] = new_bytes
    struct.pack_into("<I", blob, entry + 4, zlib.crc32(bytes(new_bytes)) & 0xFFFFFFFF)
    struct.pack_into("<Q", blob, entry + 16, len(new_bytes))
    count, = struct.unpack_from("<I", blob, 40)
    table, = struct.unpack_from("<Q", blob, 48)
    struct.pack_into("<I", blob, 44, zlib.crc32(bytes(blob[table:table + 32 * count])) & 0xFFFFFFFF)
    struct.pack_into("<I", blob, 60, zlib.crc32(bytes(blob[:60])) & 0xFFFFFFFF)
    return bytes(blob)
