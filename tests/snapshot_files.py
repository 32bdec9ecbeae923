"""Hostile snapshot files, built small: edited members, lying ``.npy`` headers, zip bombs.

A zip bomb here costs the test almost nothing: deflate output for a MiB of zeros after a
full flush is the same bytes every time, so a stream that inflates to 1.5 GB is one
~1 KiB block repeated, and its CRC is computed a MiB at a time.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

MIB = 1 << 20


def npz_bytes(arrays: Mapping[str, Any]) -> bytes:
    """``np.savez`` of ``arrays`` (any values numpy can store without pickles)."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    """A ``.npy`` 1.0 header claiming ``shape`` and ``descr``, with no data after it."""
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, }}"
    pad = 64 - (10 + len(text) + 1) % 64
    body = (text + " " * pad + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body


def npy_bytes(arr: Any) -> bytes:
    """The ``.npy`` file of ``arr``."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(arr))
    return buf.getvalue()


class RawMember:
    """One zip member as bytes on disk, with the sizes and CRC its headers claim."""

    def __init__(self, name: str, data: bytes, *, method: int, crc: int, file_size: int) -> None:
        self.name = name
        self.data = data
        self.method = method
        self.crc = crc
        self.file_size = file_size

    @classmethod
    def stored(cls, name: str, content: bytes) -> RawMember:
        return cls(name, content, method=0, crc=zlib.crc32(content), file_size=len(content))


def deflate_bomb(name: str, prefix: bytes, inflated: int, claim: int | None = None) -> RawMember:
    """A deflated member: ``prefix`` then zeros, ``inflated`` bytes in all, a few KiB on
    disk. Its headers claim ``claim`` bytes uncompressed (default: the truth)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = comp.compress(prefix) + comp.flush(zlib.Z_FULL_FLUSH)
    zeros = inflated - len(prefix)
    whole, rest = divmod(zeros, MIB)
    block = comp.compress(bytes(MIB)) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.compress(bytes(rest)) + comp.flush(zlib.Z_FINISH)
    crc = zlib.crc32(prefix)
    chunk = bytes(MIB)
    for _ in range(whole):
        crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(bytes(rest), crc)
    return RawMember(
        name,
        head + block * whole + tail,
        method=8,
        crc=crc,
        file_size=inflated if claim is None else claim,
    )


def zip_bytes(members: list[RawMember]) -> bytes:
    """A zip archive of ``members`` exactly as given (sizes and CRCs as claimed)."""
    out = io.BytesIO()
    central = []
    for m in members:
        name = m.name.encode()
        offset = out.tell()
        out.write(
            struct.pack(
                "<4s2B4HL2L2H",
                b"PK\x03\x04",
                20,
                0,
                0,
                m.method,
                0,
                0x21,
                m.crc,
                len(m.data),
                m.file_size,
                len(name),
                0,
            )
        )
        out.write(name)
        out.write(m.data)
        central.append(
            struct.pack(
                "<4s4B4HL2L5H2L",
                b"PK\x01\x02",
                20,
                3,
                20,
                0,
                0,
                m.method,
                0,
                0x21,
                m.crc,
                len(m.data),
                m.file_size,
                len(name),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + name
        )
    start = out.tell()
    for record in central:
        out.write(record)
    size = out.tell() - start
    out.write(
        struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(central), len(central), size, start, 0)
    )
    return out.getvalue()


def replace_member(npz: bytes, key: str, member: RawMember) -> bytes:
    """``npz`` with member ``key`` (``key.npy``) swapped for ``member``, the rest kept."""
    import zipfile

    members = []
    with zipfile.ZipFile(io.BytesIO(npz)) as zf:
        for info in zf.infolist():
            if info.filename == f"{key}.npy":
                members.append(member)
            else:
                members.append(RawMember.stored(info.filename, zf.read(info)))
    return zip_bytes(members)
