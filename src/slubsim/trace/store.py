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
from dataclasses import dataclass, field
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


@dataclass
class EventStore:
    """Events as numpy columns plus the metadata (see module docstring)."""

    columns: dict[str, np.ndarray[Any, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.columns["op"])

    @property
    def caches(self) -> list[dict[str, Any]]:
        caches: list[dict[str, Any]] = self.meta["caches"]
        return caches

    @property
    def warnings(self) -> list[dict[str, Any]]:
        warnings: list[dict[str, Any]] = self.meta["warnings"]
        return warnings

    def write(self, path: str | Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrays = [pa.array(self.columns[name], type=getattr(pa, t)()) for name, t in COLUMNS]
        table = pa.Table.from_arrays(arrays, names=[c for c, _ in COLUMNS])
        meta = dict(self.meta)
        meta["format"] = STORE_FORMAT
        table = table.replace_schema_metadata({"slubsim": json.dumps(meta)})
        pq.write_table(table, str(path), compression="zstd")

    @classmethod
    def read(cls, path: str | Path) -> EventStore:
        import pyarrow.parquet as pq

        p = Path(path)
        try:
            table = pq.read_table(str(p))
        except Exception as e:  # pyarrow raises several types for bad files
            raise StoreError(f"{p}: not a slubsim event store ({e})") from None
        md = table.schema.metadata or {}
        raw = md.get(b"slubsim")
        if raw is None:
            raise StoreError(f"{p}: Parquet file without slubsim metadata")
        meta = json.loads(raw)
        if meta.get("format") != STORE_FORMAT:
            raise StoreError(f"{p}: store format {meta.get('format')} (expected {STORE_FORMAT})")
        cols = {name: table.column(name).to_numpy() for name, _ in COLUMNS}
        return cls(cols, meta)


def is_store(path: str | Path) -> bool:
    p = Path(path)
    if not p.is_file():
        return False
    with open(p, "rb") as f:
        return f.read(4) == b"PAR1"
