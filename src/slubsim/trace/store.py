"""The columnar event store: one Parquet file, parsed once, replayed many times.

Columns (one row per event, in trace order):

=========  =======  ==========================================================
``ts``     float64  trace timestamp (s)
``cpu``    int16    CPU the event ran on
``op``     int8     :mod:`slubsim.trace.events` ``OP_*``
``cache``  int32    index into the cache dictionary (-1: none, e.g. markers)
``obj``    int32    dense object id (index of the pointer in first-seen order)
``ptr``    uint64   the pointer as traced
``size``   int32    bytes_req for allocations; count for bulk/prefill
``node``   int8     requested node (-1 = NUMA_NO_NODE)
``flags``  uint8    ``F_*`` bits
``aux``    int64    group id / sheaf pointer / marker index, by op
=========  =======  ==========================================================

The file's metadata key ``slubsim`` holds JSON: the cache dictionary (name,
aliases, sysfs directory, sizes, geometry when a bundle gave it), the warnings,
markers, the trace header and the machine shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SlubsimError

STORE_FORMAT = 1
COLUMNS: tuple[tuple[str, str], ...] = (
    ("ts", "float64"),
    ("cpu", "int16"),
    ("op", "int8"),
    ("cache", "int32"),
    ("obj", "int32"),
    ("ptr", "uint64"),
    ("size", "int32"),
    ("node", "int8"),
    ("flags", "uint8"),
    ("aux", "int64"),
)


class StoreError(SlubsimError):
    pass


class EventStore:
    """Events as numpy columns plus the metadata (see module docstring).

    A store made by :meth:`read` or by ingest holds every column in memory.
    One made by :meth:`open` holds only the metadata: :meth:`iter_batches`
    streams record batches from the file (memory bounded by the batch size,
    not by the trace length), and :attr:`columns` loads everything on first
    use for callers that need random access.
    """

    def __init__(
        self,
        columns: dict[str, np.ndarray[Any, Any]] | None,
        meta: dict[str, Any] | None = None,
        *,
        path: Path | None = None,
        rows: int = 0,
    ) -> None:
        if columns is None and path is None:
            raise ValueError("EventStore needs columns or a path")
        self._columns = columns
        self.meta: dict[str, Any] = meta if meta is not None else {}
        self.path = path
        self._rows = rows

    @property
    def columns(self) -> dict[str, np.ndarray[Any, Any]]:
        if self._columns is None:
            assert self.path is not None
            self._columns = _read_columns(self.path)
        return self._columns

    @property
    def in_memory(self) -> bool:
        return self._columns is not None

    @property
    def n(self) -> int:
        if self._columns is None:
            return self._rows
        return len(self._columns["op"])

    @property
    def caches(self) -> list[dict[str, Any]]:
        caches: list[dict[str, Any]] = self.meta["caches"]
        return caches

    @property
    def warnings(self) -> list[dict[str, Any]]:
        warnings: list[dict[str, Any]] = self.meta["warnings"]
        return warnings

    def iter_batches(
        self, names: Iterable[str] | None = None, rows: int = 1 << 16
    ) -> Iterator[dict[str, np.ndarray[Any, Any]]]:
        """Consecutive slices of the named columns (all by default), ``rows``
        at a time (the last one shorter); from memory when loaded, else
        streamed from the Parquet file one record batch at a time."""
        cols = list(names) if names is not None else [c for c, _ in COLUMNS]
        if self._columns is not None:
            n = self.n
            for a in range(0, n, rows):
                yield {c: self._columns[c][a : a + rows] for c in cols}
            return
        import pyarrow.parquet as pq

        from .io import iter_ahead

        assert self.path is not None
        # (not memory-mapped: 25 % faster to read, but the mapped file counts
        # in the replay's RSS, which then grew with the store: 147 -> 205 MiB
        # for 10^7 events)
        pf = pq.ParquetFile(str(self.path))

        def row_groups() -> Iterator[dict[str, np.ndarray[Any, Any]]]:
            # one row group at a time (ParquetFile.iter_batches was measured
            # to keep growing its memory pool over a 10^7-row file; this does not)
            for g in range(pf.num_row_groups):
                t = pf.read_row_group(g, columns=cols)
                yield {c: t.column(c).to_numpy() for c in cols}
                del t

        # Row groups are read and decompressed by a helper thread ahead of
        # the caller (pyarrow decodes without the GIL), so that on two cores
        # the reading overlaps the caller's work: streaming had been half of
        # a replay's time on the lab bundles (mixed-4cpu: 5.2 M events/s
        # streamed vs 10.7 M from memory; 7.6 M with this; a 10^7-row
        # synthetic store 14.0 -> 18.4 M).  At most ~2^18 rows ahead (eight
        # of the lab stores' ~23k-row groups, one of ingest's 2^18-row ones),
        # so memory stays bounded by that: 10^7-row replay peak RSS 147 MiB
        group = pf.metadata.row_group(0).num_rows if pf.num_row_groups else 1
        depth = max(1, min(8, (1 << 18) // max(group, 1)))
        source = iter_ahead(row_groups(), depth, "slubsim-store-read")
        for arrays in source:
            m = len(arrays[cols[0]]) if cols else 0
            for a in range(0, m, rows):
                yield {c: arrays[c][a : a + rows] for c in cols}

    def write(self, path: str | Path) -> None:
        with StoreWriter(path, self.meta) as w:
            w.write(self.columns)

    @classmethod
    def open(cls, path: str | Path) -> EventStore:
        """The metadata only; columns are streamed (:meth:`iter_batches`)."""
        import pyarrow.parquet as pq

        p = Path(path)
        try:
            md = pq.read_metadata(str(p))
        except Exception as e:  # pyarrow raises several types for bad files
            raise StoreError(f"{p}: not a slubsim event store ({e})") from None
        meta = _check_meta(p, (md.metadata or {}).get(b"slubsim"))
        names = set(md.schema.names)
        missing = [c for c, _ in COLUMNS if c not in names]
        if missing:
            raise StoreError(f"{p}: store without column(s) {', '.join(missing)}")
        return cls(None, meta, path=p, rows=md.num_rows)

    @classmethod
    def read(cls, path: str | Path) -> EventStore:
        """The whole store in memory."""
        store = cls.open(path)
        store.columns  # noqa: B018 -- load now, so errors surface here
        return store


class StoreWriter:
    """Write a store a slice of rows at a time (ingest streams through it):
    row groups of at most 256 Ki rows, what :meth:`EventStore.open` reads
    one at a time."""

    ROW_GROUP = 1 << 18

    def __init__(self, path: str | Path, meta: dict[str, Any]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        m = dict(meta)
        m["format"] = STORE_FORMAT
        self.schema = pa.schema(
            [(name, getattr(pa, t)()) for name, t in COLUMNS],
            metadata={"slubsim": json.dumps(m)},
        )
        self._w = pq.ParquetWriter(str(path), self.schema, compression="zstd")
        self.rows = 0

    def write(self, columns: dict[str, np.ndarray[Any, Any]]) -> None:
        pa = self._pa
        arrays = [pa.array(columns[name], type=getattr(pa, t)()) for name, t in COLUMNS]
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        self._w.write_table(table, row_group_size=self.ROW_GROUP)
        self.rows += table.num_rows

    def close(self) -> None:
        self._w.close()

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_meta(p: Path, raw: bytes | None) -> dict[str, Any]:
    if raw is None:
        raise StoreError(f"{p}: Parquet file without slubsim metadata")
    meta: dict[str, Any] = json.loads(raw)
    if meta.get("format") != STORE_FORMAT:
        raise StoreError(f"{p}: store format {meta.get('format')} (expected {STORE_FORMAT})")
    return meta


def _read_columns(p: Path) -> dict[str, np.ndarray[Any, Any]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(str(p), columns=[c for c, _ in COLUMNS])
    except Exception as e:
        raise StoreError(f"{p}: not a slubsim event store ({e})") from None
    return {name: table.column(name).to_numpy() for name, _ in COLUMNS}


def is_store(path: str | Path) -> bool:
    p = Path(path)
    if not p.is_file():
        return False
    with open(p, "rb") as f:
        return f.read(4) == b"PAR1"
