"""Reading a trace bundle's metadata (the layout of ``shared/traces/<run>/``).

A bundle directory holds ``trace.txt[.xz]``, ``meta.json`` (kernel, vCPUs, NUMA
nodes, …) and ``slab_stats.json`` (per sysfs directory: names, geometry and
counter snapshots).  This module turns ``meta.json`` into the machine shape.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SlubsimUsageError

_NODE_CPUS = re.compile(r"node(\d+)\s+cpus=([\d,\-]+)")
_INITMEM = re.compile(r"Initmem setup node (\d+) \[mem (0x[0-9a-fA-F]+)-(0x[0-9a-fA-F]+)\]")
#: x86-64 direct map base with 4-level paging and no KASLR (``page_offset_base``)
DIRECT_MAP_BASE = 0xFFFF888000000000


def parse_cpulist(text: str) -> list[int]:
    """``0-1,4`` -> ``[0, 1, 4]`` (the kernel's cpulist format)."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    return out


@dataclass(frozen=True)
class BundleMeta:
    path: Path
    kernel_version: str  # "7.3" or "6.12"
    cpus: int
    nodes: int
    cpu_nodes: list[int]
    raw: dict[str, Any]
    #: (node, first, last) physical address ranges, when the bundle's dmesg
    #: gives them and the kernel ran without KASLR (see :func:`node_memory`)
    mem_ranges: tuple[tuple[int, int, int], ...] = ()

    @property
    def traced_from_boot(self) -> bool:
        """Tracing was switched on by the kernel command line (``trace_event=``),
        so the trace holds the allocator's activity from early boot."""
        return "trace_event=" in str(self.raw.get("kernel_cmdline") or "")

    @classmethod
    def load(cls, bundle: Path | str) -> BundleMeta:
        path = Path(bundle)
        mfile = path / "meta.json"
        if not mfile.is_file():
            raise SlubsimUsageError(f"{path}: not a trace bundle (no meta.json)")
        try:
            raw = json.loads(mfile.read_text())
        except (OSError, ValueError) as e:
            raise SlubsimUsageError(f"{mfile}: unreadable meta.json ({e})") from None
        version = str(raw.get("kernel_version") or "")
        if not version:
            rel = str(raw.get("kernel_release") or "")
            m = re.match(r"(\d+)\.(\d+)", rel)
            version = f"{m.group(1)}.{m.group(2)}" if m else "7.3"
        cpus = int(raw.get("vcpus") or 1)
        cpu_nodes = [0] * cpus
        nodes = 1
        for entry in raw.get("numa_nodes") or []:
            m2 = _NODE_CPUS.search(str(entry))
            if m2:
                nid = int(m2.group(1))
                nodes = max(nodes, nid + 1)
                for c in parse_cpulist(m2.group(2)):
                    if c < cpus:
                        cpu_nodes[c] = nid
        return cls(path, version, cpus, nodes, cpu_nodes, raw, node_memory(path, raw))


def node_memory(path: Path, raw: dict[str, Any]) -> tuple[tuple[int, int, int], ...]:
    """Each NUMA node's physical memory from the bundle's ``dmesg.txt[.xz]``
    (``Initmem setup node N [mem A-B]``), so that a traced pointer names the
    node of its page: ``pointer - DIRECT_MAP_BASE`` is the physical address
    when the kernel ran with ``nokaslr`` (else the direct map moves and
    nothing is returned); also nothing on a one-node machine."""
    if "nokaslr" not in str(raw.get("kernel_cmdline") or ""):
        return ()
    import lzma

    text = ""
    for name in ("dmesg.txt.xz", "dmesg.txt"):
        f = path / name
        try:
            if f.is_file():
                if name.endswith(".xz"):
                    with lzma.open(f, "rt", errors="replace") as fh:
                        text = fh.read()
                else:
                    text = f.read_text(errors="replace")
                break
        except (OSError, lzma.LZMAError, EOFError):
            return ()
    ranges = tuple(
        (int(m.group(1)), int(m.group(2), 16), int(m.group(3), 16)) for m in _INITMEM.finditer(text)
    )
    return ranges if len({r[0] for r in ranges}) > 1 else ()


def pointer_node(ptr: int, mem_ranges: list[list[int]] | tuple[tuple[int, int, int], ...]) -> int:
    """NUMA node of the page behind a traced direct-map pointer, -1 if unknown."""
    phys = ptr - DIRECT_MAP_BASE
    for nid, lo, hi in mem_ranges:
        if lo <= phys <= hi:
            return int(nid)
    return -1
