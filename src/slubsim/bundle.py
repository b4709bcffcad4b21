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
        return cls(path, version, cpus, nodes, cpu_nodes, raw)
