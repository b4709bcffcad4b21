"""``slubsim record``: capture a trace bundle on the machine being studied.

Run as root on the target machine.  The recorder sets tracefs up the way the
shared bundles were made (``shared/traces/README.md``): the four kmem events,
optional kprobes for the untraced paths (kfree_rcu, bulk, prefilled sheaves;
only for symbols the kernel has), a per-CPU buffer, ``nooverwrite``,
``trace_clock=global`` and unhashed pointers where the kernel allows it.  It
reads every ``/sys/kernel/slab/<cache>/`` attribute before and after the
workload, writing ``LAB_READ before|after <cache> <attr>`` into the trace right
after each read, runs the workload (``--duration`` or a command), and writes a
bundle directory (``trace.txt``, ``slab_stats.json``, ``meta.json``,
``kprobe_events.txt``) that ingest, replay and validate take directly.

Every tracefs setting it changes is restored afterwards -- also on error and on
Ctrl-C.  The paths are configurable, so tests run it against a fake tree.
"""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .constants import SYSFS_SIZING_ATTRS
from .errors import SlubsimError

KMEM_EVENTS = ("kmem_cache_alloc", "kmem_cache_free", "kmalloc", "kfree")
#: sysfs files that are write-only triggers or expensive debug dumps
SKIP_ATTRS = frozenset({"shrink", "validate", "alloc_calls", "free_calls"})
GEOMETRY_ATTRS = (
    *SYSFS_SIZING_ATTRS,
    "cpu_partial",
    "ctor",
    "hwcache_align",
    "reclaim_account",
    "destroy_by_rcu",
    "red_zone",
    "poison",
    "store_user",
    "sanity_checks",
    "trace",
    "aliases",
)
STATE_ATTRS = (
    "objects",
    "objects_partial",
    "partial",
    "slabs",
    "total_objects",
    "cpu_slabs",
    "slabs_cpu_partial",
)
_STAT_RE = re.compile(r"^(\d+)((?: C\d+=\d+)*)\s*$")


class RecordError(SlubsimError):
    pass


def kprobe_definitions(name_off: int) -> list[tuple[str, str]]:
    """(symbol, definition) of the lab kprobes; ``name_off`` is
    ``offsetof(struct kmem_cache, name)`` (88 on 7.x, 96 on 6.12 x86-64)."""
    n = f"+0(+{name_off}(%di)):string"
    return [
        (
            "kvfree_call_rcu",
            "p:lab/kfree_rcu kvfree_call_rcu ptr=%si:x64 head=%di:x64 caller=+0(%sp):symbol",
        ),
        (
            "rcu_free_sheaf",
            "p:lab/rcu_free_sheaf rcu_free_sheaf sheaf=%di:x64 size=+24(%di):u32 "
            "name=+0(+88(+16(%di))):string",
        ),
        (
            "kmem_cache_free_bulk",
            f"p:lab/free_bulk kmem_cache_free_bulk size=%si:u64 name={n} caller=+0(%sp):symbol "
            "objs=+0(%dx):x64[64]",
        ),
        *[
            (
                "kmem_cache_free_bulk",
                f"p:lab/free_bulk_{i} kmem_cache_free_bulk size=%si:u64 "
                f"objs=+{512 * i}(%dx):x64[64]",
            )
            for i in range(1, 8)
        ],
        (
            "kmem_cache_alloc_bulk_noprof",
            f"p:lab/alloc_bulk kmem_cache_alloc_bulk_noprof gfp=%si:x32 size=%dx:u64 arr=%cx:x64 "
            f"name={n} caller=+0(%sp):symbol",
        ),
        (
            "kmem_cache_alloc_bulk_noprof",
            "r10:lab/alloc_bulk_ret kmem_cache_alloc_bulk_noprof ret=$retval:s32",
        ),
        (
            "kmem_cache_prefill_sheaf",
            f"p:lab/prefill_sheaf kmem_cache_prefill_sheaf gfp=%si:x32 count=%dx:u32 name={n} "
            "caller=+0(%sp):symbol",
        ),
        (
            "kmem_cache_prefill_sheaf",
            "r10:lab/prefill_sheaf_ret kmem_cache_prefill_sheaf sheaf=$retval:x64",
        ),
        (
            "kmem_cache_return_sheaf",
            f"p:lab/return_sheaf kmem_cache_return_sheaf sheaf=%dx:x64 size=+24(%dx):u32 name={n}",
        ),
        (
            "kmem_cache_alloc_from_sheaf_noprof",
            f"p:lab/alloc_from_sheaf kmem_cache_alloc_from_sheaf_noprof sheaf=%dx:x64 "
            f"size=+24(%dx):u32 name={n}",
        ),
    ]


def parse_stat(text: str) -> tuple[int, dict[str, int]] | None:
    """``"5423 C0=357 C1=4357"`` -> (5423, {"0": 357, "1": 4357})."""
    m = _STAT_RE.match(text.strip())
    if m is None:
        return None
    per = {}
    for part in m.group(2).split():
        c, v = part[1:].split("=")
        per[c] = int(v)
    return int(m.group(1)), per


@dataclass
class RecordPaths:
    tracefs: Path = Path("/sys/kernel/tracing")
    slab: Path = Path("/sys/kernel/slab")
    nodes: Path = Path("/sys/devices/system/node")
    osrelease: Path = Path("/proc/sys/kernel/osrelease")


@dataclass
class Recorder:
    out: Path
    paths: RecordPaths = field(default_factory=RecordPaths)
    buffer_kb: int = 262144
    kprobes: bool = True
    duration: float | None = None
    command: list[str] | Callable[[], None] | None = None
    #: writes one marker into the trace (default: tracefs ``trace_marker``)
    marker: Callable[[str], None] | None = None
    log: Callable[[str], None] = print
    warnings: list[str] = field(default_factory=list)
    _saved: list[tuple[Path, str]] = field(default_factory=list)

    # ----------------------------------------------------------- tracefs
    def _t(self, rel: str) -> Path:
        return self.paths.tracefs / rel

    def _write(self, path: Path, value: str, save: bool = True) -> None:
        if save and path.exists() and path.is_file():
            self._saved.append((path, self._current(path)))
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError as e:
            raise RecordError(f"cannot write {path}: {e.strerror or e}") from None

    @staticmethod
    def _current(path: Path) -> str:
        text = path.read_text()
        m = re.search(r"\[(\S+)\]", text)  # trace_clock: "[local] global"
        return m.group(1) if m else text.strip()

    def _check_tracefs(self) -> None:
        t = self.paths.tracefs
        if not t.is_dir() or not (t / "tracing_on").exists():
            raise RecordError(
                f"{t}: tracefs is not mounted here (mount -t tracefs nodev {t}, or pass --tracefs)"
            )
        if not os.access(t / "tracing_on", os.W_OK) or (t / "tracing_on").is_dir():
            raise RecordError(f"{t}: tracefs is not writable (run as root)")
        if not self.paths.slab.is_dir():
            raise RecordError(f"{self.paths.slab}: no SLUB sysfs (CONFIG_SYSFS, SLUB)")

    def _setup(self) -> list[str]:
        t = self._t
        self._write(t("tracing_on"), "0")
        self._write(t("trace"), "", save=False)  # clear the buffer
        self._write(t("buffer_size_kb"), str(self.buffer_kb))
        if t("trace_clock").exists():
            self._write(t("trace_clock"), "global")
        if t("options/overwrite").exists():
            self._write(t("options/overwrite"), "0")
        if t("options/hash-ptr").exists():
            self._write(t("options/hash-ptr"), "0")
        else:
            self.warnings.append(
                "tracefs has no options/hash-ptr: pointers may be hashed (boot with "
                "no_hash_pointers); pairing still works, slab pages cannot be derived"
            )
        for ev in KMEM_EVENTS:
            p = t(f"events/kmem/{ev}/enable")
            if not p.exists():
                raise RecordError(f"{p}: the kernel has no kmem:{ev} tracepoint")
            self._write(p, "1")
        probes: list[str] = []
        if self.kprobes and t("kprobe_events").exists():
            probes = self._setup_kprobes()
        return probes

    def _setup_kprobes(self) -> list[str]:
        t = self._t
        avail: set[str] | None = None
        funcs = t("available_filter_functions")
        if funcs.exists():
            avail = {ln.split()[0] for ln in funcs.read_text().splitlines() if ln.strip()}
        rel = self.paths.osrelease.read_text().strip() if self.paths.osrelease.exists() else ""
        off = 96 if rel.startswith("6.") else 88
        self._saved.append((t("kprobe_events"), t("kprobe_events").read_text()))
        chosen: list[str] = []
        skipped: set[str] = set()
        for sym, definition in kprobe_definitions(off):
            if avail is not None and sym not in avail:
                skipped.add(sym)
                continue
            chosen.append(definition)
        if skipped:
            self.warnings.append(
                "kprobes skipped (the kernel has no such symbol): " + ", ".join(sorted(skipped))
            )
        if chosen:
            try:
                with open(t("kprobe_events"), "a") as f:
                    f.write("\n".join(chosen) + "\n")
            except OSError as e:
                raise RecordError(f"cannot add kprobes: {e.strerror or e}") from None
            if t("events/lab/enable").exists():
                self._write(t("events/lab/enable"), "1")
        return chosen

    def _restore(self) -> None:
        for path, value in reversed(self._saved):
            try:
                with open(path, "w") as f:
                    f.write(value if not value or value.endswith("\n") else value + "\n")
            except OSError as e:
                self.warnings.append(f"could not restore {path}: {e}")
        self._saved.clear()

    def _mark(self, text: str) -> None:
        if self.marker is not None:
            self.marker(text)
            return
        with open(self._t("trace_marker"), "w") as f:
            f.write(text)

    # -------------------------------------------------------------- sysfs
    def _snapshot(self, when: str) -> dict[str, dict[str, str]]:
        snap: dict[str, dict[str, str]] = {}
        slab = self.paths.slab
        for d in sorted(slab.iterdir()):
            if d.is_symlink() or not d.is_dir():
                continue
            attrs: dict[str, str] = {}
            for a in sorted(d.iterdir()):
                if a.name in SKIP_ATTRS or not a.is_file():
                    continue
                try:
                    attrs[a.name] = a.read_text().strip()
                except OSError:
                    continue
                self._mark(f"LAB_READ {when} {d.name} {a.name}")
            snap[d.name] = attrs
        return snap

    def _aliases(self) -> dict[str, list[str]]:
        names: dict[str, list[str]] = {}
        for d in self.paths.slab.iterdir():
            if d.is_symlink():
                names.setdefault(os.path.basename(os.readlink(d)), []).append(d.name)
        return names

    # ---------------------------------------------------------------- run
    def run(self) -> dict[str, Any]:
        self._check_tracefs()
        self.out.mkdir(parents=True, exist_ok=True)
        started = time.time()
        try:
            probes = self._setup()
            self._write(self._t("tracing_on"), "1", save=False)
            self._mark("LAB_PHASE snapshot_before")
            before = self._snapshot("before")
            self._mark("LAB_PHASE workload_start")
            self._workload()
            self._mark("LAB_PHASE workload_end")
            after = self._snapshot("after")
            self._write(self._t("tracing_on"), "0", save=False)
            complete, header = self._copy_trace()
            profile = self._kprobe_profile()  # before _restore() removes the probes
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise RecordError(f"{self.out}: disk full while recording") from None
            raise RecordError(f"recording failed: {e}") from None
        finally:
            self._restore()
        stats_available = any("alloc_fastpath" in a for a in before.values())
        if not stats_available:
            self.warnings.append(
                "the kernel has no SLUB_STATS counters: recorded anyway, but "
                "`slubsim validate` cannot compare counters for this bundle"
            )
        self._write_bundle(
            before, after, probes, complete, header, started, stats_available, profile
        )
        if not complete:
            self.warnings.append("the ring buffer lost events: the trace is incomplete")
        missed = {ev: p["missed"] for ev, p in (profile or {}).items() if p["missed"]}
        if missed:
            self.warnings.append(
                "kprobe hits missed ("
                + ", ".join(f"{ev} {n}" for ev, n in sorted(missed.items()))
                + "): those calls ran without their trace event; validate reports it"
            )
        for w in self.warnings:
            self.log(f"warning: {w}")
        return {
            "out": str(self.out),
            "complete": complete,
            "caches": len(before),
            "kprobes": len(probes),
            "warnings": list(self.warnings),
        }

    def _workload(self) -> None:
        if callable(self.command):
            self.command()
        elif self.command:
            subprocess.run(self.command, check=False)
        else:
            time.sleep(self.duration if self.duration is not None else 1.0)

    def _copy_trace(self) -> tuple[bool, dict[str, int]]:
        src = self._t("trace")
        header: dict[str, int] = {}
        with open(src) as fin, open(self.out / "trace.txt", "w") as fout:
            for line in fin:
                if line.startswith("#") and "entries-in-buffer" in line:
                    m = re.search(r"(\d+)/(\d+)", line)
                    if m:
                        header = {
                            "entries_in_buffer": int(m.group(1)),
                            "entries_written": int(m.group(2)),
                        }
                fout.write(line)
        lost = 0
        per_cpu = self._t("per_cpu")
        if per_cpu.is_dir():
            for cpu in per_cpu.iterdir():
                stats = cpu / "stats"
                if stats.is_file():
                    for ln in stats.read_text().splitlines():
                        if ln.startswith(("overrun:", "dropped events:")):
                            lost += int(ln.split(":")[1])
        complete = lost == 0 and header.get("entries_in_buffer") == header.get("entries_written")
        return complete, header

    def _kprobe_profile(self) -> dict[str, dict[str, int]] | None:
        """Hits and missed hits of every lab kprobe (tracefs ``kprobe_profile``:
        event, nhit, nmissed).  A missed hit (a probe firing while another
        probe's handler runs on that CPU, e.g. in softirq) is a call of that
        allocator path with no event in the trace.  None without the file."""
        f = self._t("kprobe_profile")
        if not f.is_file():
            return None
        out: dict[str, dict[str, int]] = {}
        for ln in f.read_text().splitlines():
            parts = ln.split()
            if len(parts) < 3 or not (parts[1].isdigit() and parts[2].isdigit()):
                continue
            group, _, ev = parts[0].rpartition("/")
            if group in ("", "lab"):
                out[ev] = {"hits": int(parts[1]), "missed": int(parts[2])}
        return out

    def _write_bundle(
        self,
        before: dict[str, dict[str, str]],
        after: dict[str, dict[str, str]],
        probes: list[str],
        complete: bool,
        header: dict[str, int],
        started: float,
        stats_available: bool,
        profile: dict[str, dict[str, int]] | None,
    ) -> None:
        aliases = self._aliases()
        out: dict[str, Any] = {}
        for d, b in before.items():
            a = after.get(d, {})
            names = sorted(set(aliases.get(d, [])) | ({d} if not d.startswith(":") else set()))
            stats: dict[str, Any] = {}
            for attr, bv in b.items():
                pb, pa = parse_stat(bv), parse_stat(a.get(attr, ""))
                if pb is None or pa is None or attr in GEOMETRY_ATTRS or attr in STATE_ATTRS:
                    continue
                cpus = set(pb[1]) | set(pa[1])
                stats[attr] = {
                    "before": pb[0],
                    "after": pa[0],
                    "delta": pa[0] - pb[0],
                    "delta_per_cpu": {c: pa[1].get(c, 0) - pb[1].get(c, 0) for c in sorted(cpus)},
                }
            out[d] = {
                "names": names or [d],
                "config": {k: b[k] for k in GEOMETRY_ATTRS if k in b},
                "state_before": {k: b[k] for k in STATE_ATTRS if k in b},
                "state_after": {k: a[k] for k in STATE_ATTRS if k in a},
                "stats": stats,
            }
        (self.out / "slab_stats.json").write_text(json.dumps(out, indent=1) + "\n")
        rel = self.paths.osrelease.read_text().strip() if self.paths.osrelease.exists() else ""
        m = re.match(r"(\d+)\.(\d+)", rel)
        per_cpu = self._t("per_cpu")
        vcpus = len(list(per_cpu.iterdir())) if per_cpu.is_dir() else (os.cpu_count() or 1)
        nodes = []
        if self.paths.nodes.is_dir():
            for nd in sorted(self.paths.nodes.glob("node[0-9]*")):
                cl = nd / "cpulist"
                if cl.is_file():
                    nodes.append(f"{nd.name} cpus={cl.read_text().strip()}")
        meta = {
            "kernel_release": rel,
            "kernel_version": f"{m.group(1)}.{m.group(2)}" if m else "",
            "vcpus": vcpus,
            "numa_nodes": nodes if len(nodes) > 1 else [],
            "trace_header": header,
            "trace_complete": complete,
            "kprobe_profile": profile,
            "slub_stats_available": stats_available,
            "workload": (
                " ".join(self.command)
                if isinstance(self.command, list)
                else f"sleep {self.duration}"
                if not callable(self.command)
                else "callable"
            ),
            "recorded_at": started,
            "recorder": "slubsim record",
        }
        (self.out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
        (self.out / "kprobe_events.txt").write_text("".join(p + "\n" for p in probes))
