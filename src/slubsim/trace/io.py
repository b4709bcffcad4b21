"""Opening trace files: plain, gzip, xz or zstd, streamed, with clear errors.

Compression is detected from the magic bytes, not the file name.  A truncated
compressed stream raises :class:`TraceFormatError` saying so (with the line
count reached); binary (non-text) input and empty files are rejected up front.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

from ..errors import SlubsimError


class TraceFormatError(SlubsimError):
    """Bad trace input; the message starts with ``file:line:`` where known."""


_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"BZh": "bzip2",
}


def detect_compression(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(6)
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            return kind
    return "plain"


def _open_binary(path: Path, kind: str) -> IO[bytes]:
    if kind == "gzip":
        return cast(IO[bytes], gzip.open(path, "rb"))
    if kind == "xz":
        return cast(IO[bytes], lzma.open(path, "rb"))
    if kind == "bzip2":
        return cast(IO[bytes], bz2.open(path, "rb"))
    if kind == "zstd":
        try:
            import zstandard
        except ImportError:  # pragma: no cover - dependency is declared
            raise TraceFormatError(f"{path}: zstd input needs the 'zstandard' package") from None
        fh = open(path, "rb")  # noqa: SIM115 - closed by the stream reader
        return cast(IO[bytes], zstandard.ZstdDecompressor().stream_reader(fh, closefd=True))
    return open(path, "rb")


def iter_lines(path: str | Path, chunk_bytes: int = 1 << 20) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` (1-based, newline stripped) from a trace file.

    Raises :class:`TraceFormatError` for a missing, empty, binary or truncated
    file.
    """
    p = Path(path)
    if not p.exists():
        raise TraceFormatError(f"{p}: no such file")
    if p.is_dir():
        raise TraceFormatError(f"{p}: is a directory, not a trace file")
    if p.stat().st_size == 0:
        raise TraceFormatError(f"{p}: empty file")
    kind = detect_compression(p)
    lineno = 0
    checked = False
    try:
        with _open_binary(p, kind) as raw:
            reader = io.BufferedReader(cast(Any, raw), buffer_size=chunk_bytes)
            for bline in reader:
                lineno += 1
                if not checked:
                    checked = True
                    if b"\x00" in bline[:4096]:
                        raise TraceFormatError(f"{p}:1: binary data, not a text trace")
                try:
                    line = bline.decode("utf-8")
                except UnicodeDecodeError:
                    if bline.count(b"\x00") or sum(c < 9 for c in bline[:200]) > 2:
                        raise TraceFormatError(
                            f"{p}:{lineno}: binary data, not a text trace"
                        ) from None
                    line = bline.decode("latin-1")
                yield lineno, line.rstrip("\r\n")
    except (EOFError, lzma.LZMAError, gzip.BadGzipFile, OSError) as e:
        if isinstance(e, TraceFormatError):
            raise
        msg = str(e) or type(e).__name__
        if isinstance(e, EOFError) or "end of stream" in msg.lower() or "truncat" in msg.lower():
            raise TraceFormatError(
                f"{p}:{lineno}: truncated {kind} stream (compressed file ends early; "
                f"{lineno} lines read)"
            ) from None
        raise TraceFormatError(f"{p}:{lineno}: cannot read {kind} data: {msg}") from None
    except Exception as e:  # zstandard raises its own ZstdError
        if type(e).__name__ == "ZstdError":
            raise TraceFormatError(
                f"{p}:{lineno}: truncated or corrupt zstd stream ({e})"
            ) from None
        raise
    if lineno == 0:
        raise TraceFormatError(f"{p}: empty trace (no lines after decompression)")
