"""Opening trace files: plain, gzip, xz or zstd, streamed, with clear errors.

Compression is detected from the magic bytes, not the file name.  A truncated
compressed stream raises :class:`TraceFormatError` saying so (with the line
count reached); binary (non-text) input and empty files are rejected up front.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TypeVar, cast

from ..errors import SlubsimError

T = TypeVar("T")


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


def iter_ahead(source: Iterator[T], depth: int, name: str) -> Iterator[T]:
    """The items of ``source``, produced by a helper thread up to ``depth``
    items ahead of the caller (so GIL-free work in ``source`` -- decompression,
    the compiled line scanner -- overlaps with the caller's on the other core;
    memory stays bounded by ``depth`` items).  An exception in ``source`` is
    re-raised here, in the caller's thread, after the items before it; when
    the caller stops early (an error, Ctrl-C) the helper stops and closes
    ``source``."""
    import queue
    import threading

    end = object()
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in source:
                if stop.is_set():
                    break
                q.put(item)
            q.put(end)
        except BaseException as e:  # handed to the consumer
            q.put(e)
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    t = threading.Thread(target=produce, name=name, daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield cast(T, item)
    finally:
        stop.set()
        while t.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.01)


def _decompress_ahead(raw: IO[bytes], chunk_bytes: int, depth: int = 4) -> Iterator[bytes]:
    """Chunks of ``raw``, read by a helper thread up to ``depth`` chunks ahead:
    the gzip, xz, bzip2 and zstd decompressors release the GIL, so
    decompression overlaps with the parsing done by the caller."""
    return iter_ahead(iter(lambda: raw.read(chunk_bytes), b""), depth, "slubsim-decompress")


def iter_blocks(
    path: str | Path,
    chunk_bytes: int = 1 << 22,
    count_lines: Callable[[bytes], int] | None = None,
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(first_line_number, block)`` from a trace file: ``block`` holds
    whole lines only and always ends with a newline (one is added after a
    final unterminated line); line numbers are 1-based.  ``count_lines``
    counts a block's newlines (default ``bytes.count``; the ingester passes
    the compiled scanner's, which runs without the GIL).

    Decompression runs ahead in a helper thread (:func:`_decompress_ahead`);
    plain files are read directly.
    Raises :class:`TraceFormatError` for a missing, empty, binary or truncated
    file."""
    p = Path(path)
    if not p.exists():
        raise TraceFormatError(f"{p}: no such file")
    if p.is_dir():
        raise TraceFormatError(f"{p}: is a directory, not a trace file")
    if p.stat().st_size == 0:
        raise TraceFormatError(f"{p}: empty file")
    kind = detect_compression(p)
    count = count_lines if count_lines is not None else _count_newlines
    lineno = 0
    checked = False
    pieces: list[bytes] = []  # read, not yet cut into a block
    try:
        with _open_binary(p, kind) as raw:
            carry = b""
            # read in pieces of at most 1 MiB (a truncated stream loses only
            # the piece being read), cut blocks of about ``chunk_bytes`` at the
            # last newline of their last piece: one copy (the join) per block
            size = 0
            piece_bytes = min(chunk_bytes, 1 << 20)
            source = (
                iter(lambda: raw.read(piece_bytes), b"")  # page cache: no thread needed
                if kind == "plain"
                else _decompress_ahead(raw, piece_bytes)
            )
            for piece in source:
                if not checked:
                    checked = True
                    if b"\x00" in piece[:4096].split(b"\n", 1)[0]:
                        raise TraceFormatError(f"{p}:1: binary data, not a text trace")
                pieces.append(piece)
                size += len(piece)
                if size < chunk_bytes:
                    continue
                cut = piece.rfind(b"\n")
                if cut < 0:  # no line ends in this piece: keep reading
                    continue
                pieces[-1] = piece[: cut + 1]
                if carry:
                    pieces.insert(0, carry)
                block = b"".join(pieces)
                carry = piece[cut + 1 :]
                pieces = []
                size = len(carry)
                yield lineno + 1, block
                lineno += count(block)
            tail = carry + b"".join(pieces)
            pieces = []
            if tail:
                if not tail.endswith(b"\n"):
                    tail += b"\n"
                yield lineno + 1, tail
                lineno += count(tail)
    except (EOFError, lzma.LZMAError, gzip.BadGzipFile, OSError) as e:
        if isinstance(e, TraceFormatError):
            raise
        lineno += sum(x.count(b"\n") for x in pieces)  # whole lines read before the error
        msg = str(e) or type(e).__name__
        if isinstance(e, EOFError) or "end of stream" in msg.lower() or "truncat" in msg.lower():
            if lineno == 0:  # no line to point at
                raise TraceFormatError(
                    f"{p}: truncated {kind} stream (compressed file ends before its first line)"
                ) from None
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


def _count_newlines(data: bytes) -> int:
    return data.count(b"\n")


def iter_lines(path: str | Path, chunk_bytes: int = 1 << 20) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` (1-based, newline stripped) from a trace
    file; errors as :func:`iter_blocks`."""
    p = Path(path)
    for first, block in iter_blocks(p, chunk_bytes):
        blines = block.split(b"\n")
        blines.pop()  # after the block's final newline
        for k, bline in enumerate(blines):
            yield first + k, decode_line(p, first + k, bline)


def decode_line(p: Path, lineno: int, bline: bytes) -> str:
    """One line's text: UTF-8, else Latin-1 unless it is binary data."""
    try:
        line = bline.decode("utf-8")
    except UnicodeDecodeError:
        if bline.count(b"\x00") or sum(c < 9 for c in bline[:200]) > 2:
            raise TraceFormatError(f"{p}:{lineno}: binary data, not a text trace") from None
        line = bline.decode("latin-1")
    return line.rstrip("\r")
