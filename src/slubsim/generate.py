"""Synthetic workloads and malloc-trace import, written as ftrace text.

Every generator writes the same text format a real ``/sys/kernel/tracing/trace``
has (``kmem_cache_alloc name=`` of Linux 7.x, ``kmalloc``, ``kmem_cache_free``,
``kfree``, and the lab kprobe events for kfree_rcu and prefilled sheaves), so
ingest, replay, sweep and validate take them unchanged.  A seed makes every
trace reproducible.

Kinds (``slubsim generate KIND``):

* ``lifo`` -- per-CPU LIFO churn: allocate ``depth`` objects, free them in reverse.
* ``prodcons`` -- producers allocate, a share ``remote`` of the objects is freed
  on another CPU (the consumer), the rest on the allocating CPU.
* ``bursts`` -- allocate ``burst`` objects then free them all, per CPU.
* ``mixed-lifetime`` -- a share ``long_share`` of objects lives ``long_life``
  operations, the rest ``short_life``.
* ``kfree-rcu-storm`` -- objects released with kfree_rcu (share ``rcu_share``).
* ``numa-remote`` -- 2 nodes (CPUs split in halves); a share ``remote`` of the
  frees happens on a CPU of the other node.
* ``prefill-migrate`` -- prefill a sheaf, then allocate from it, on another CPU
  with probability ``migrate`` (the maple-tree pattern).
* ``irq-mix`` -- task allocations and frees; a share ``irq`` of the operations
  are interrupt-context allocate+free pairs (hardirq flag ``d.h1.`` in the
  ftrace flags column) on the same CPU.

``import_rep`` maps a CMU malloclab ``.rep`` trace (``a id size`` / ``f id`` /
``r id size``) onto kmalloc: ids are assigned to CPUs round-robin
(``id % cpus``, the stated policy), sizes to kmalloc classes (large
allocations above 8 KiB go to the page allocator), a realloc that changes the
size class is a kfree plus a kmalloc (krealloc), one that fits is a no-op.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from .constants import KMALLOC_MAX_CACHE_SIZE
from .errors import SlubsimUsageError
from .kmalloc import get_order, kmalloc_index_size

BASE = 0xFFFF888100000000
KINDS = (
    "lifo",
    "prodcons",
    "bursts",
    "mixed-lifetime",
    "kfree-rcu-storm",
    "numa-remote",
    "prefill-migrate",
    "irq-mix",
)


class _Writer:
    """Emit trace lines with increasing timestamps and fresh pointers."""

    def __init__(self, f: IO[str], cpus: int, size: int, cache: str) -> None:
        self.f = f
        self.ts = 1.0
        self.size = size
        self.cache = cache
        self.next_ptr = BASE
        self.free_ptrs: list[int] = []  # recycled like a LIFO allocator would
        self.lines = 0
        f.write(f"# tracer: nop\n#\n# entries-in-buffer/entries-written: 0/0   #P:{cpus}\n#\n")

    def _line(self, cpu: int, text: str, task: str = "gen-1", flags: str = ".....") -> None:
        self.ts += 0.000001
        self.f.write(f"  {task:>16} [{cpu:03d}] {flags} {self.ts:.6f}: {text}\n")
        self.lines += 1

    def new_ptr(self) -> int:
        if self.free_ptrs:
            return self.free_ptrs.pop()
        p = self.next_ptr
        self.next_ptr += self.size
        return p

    def alloc(self, cpu: int, task: str = "gen-1", flags: str = ".....") -> int:
        p = self.new_ptr()
        self._line(
            cpu,
            f"kmem_cache_alloc: call_site=gen+0x1/0x2 ptr={p:x} name={self.cache} "
            f"bytes_req={self.size} bytes_alloc={self.size} gfp_flags=GFP_KERNEL node=-1 "
            "accounted=false",
            task,
            flags,
        )
        return p

    def free(self, cpu: int, p: int, flags: str = ".....") -> None:
        self._line(
            cpu, f"kmem_cache_free: call_site=gen+0x3/0x4 ptr={p:x} name={self.cache}", flags=flags
        )
        self.free_ptrs.append(p)

    def kfree_rcu(self, cpu: int, p: int) -> None:
        self._line(cpu, f"kfree_rcu: (kvfree_call_rcu+0x0/0x2aa) ptr=0x{p:x} head=0x0 caller=gen")
        self.free_ptrs.insert(0, p)  # reusable only much later


def _params(defaults: dict[str, float], given: dict[str, float]) -> dict[str, float]:
    unknown = set(given) - set(defaults)
    if unknown:
        raise SlubsimUsageError(
            f"unknown parameter(s) {', '.join(sorted(unknown))}; "
            f"valid: {', '.join(f'{k}={v}' for k, v in defaults.items())}"
        )
    return {**defaults, **given}


def _lifo(w: _Writer, rng: random.Random, p: dict[str, float], cpus: int) -> None:
    depth = int(p["depth"])
    for _ in range(int(p["cycles"])):
        cpu = rng.randrange(cpus)
        objs = [w.alloc(cpu) for _ in range(depth)]
        for o in reversed(objs):
            w.free(cpu, o)


def _prodcons(w: _Writer, rng: random.Random, p: dict[str, float], cpus: int) -> None:
    live: list[tuple[int, int]] = []
    for _ in range(int(p["ops"])):
        cpu = rng.randrange(cpus)
        live.append((w.alloc(cpu), cpu))
        if len(live) > int(p["backlog"]):
            o, acpu = live.pop(0)
            fcpu = acpu
            if cpus > 1 and rng.random() < p["remote"]:
                fcpu = (acpu + 1 + rng.randrange(cpus - 1)) % cpus
            w.free(fcpu, o)
    for o, acpu in live:
        w.free(acpu, o)


def _bursts(w: _Writer, rng: random.Random, p: dict[str, float], cpus: int) -> None:
    for _ in range(int(p["rounds"])):
        cpu = rng.randrange(cpus)
        objs = [w.alloc(cpu) for _ in range(int(p["burst"]))]
        for o in objs:
            w.free(cpu, o)


def _mixed(w: _Writer, rng: random.Random, p: dict[str, float], cpus: int) -> None:
    due: dict[int, list[tuple[int, int]]] = {}
    n = int(p["ops"])
    for t in range(n):
        cpu = rng.randrange(cpus)
        o = w.alloc(cpu)
        life = int(p["long_life"] if rng.random() < p["long_share"] else p["short_life"])
        due.setdefault(t + life, []).append((o, cpu))
        for o2, c2 in due.pop(t, []):
            w.free(c2, o2)
    for t in sorted(due):
        for o2, c2 in due[t]:
            w.free(c2, o2)


def _rcu_storm(w: _Writer, rng: random.Random, p: dict[str, float], cpus: int) -> None:
    for _ in range(int(p["rounds"])):
        cpu = rng.randrange(cpus)
        objs = [w.alloc(cpu) for _ in range(int(p["burst"]))]
        for o in objs:
            if rng.random() < p["rcu_share"]:
                w.kfree_rcu(cpu, o)
            else:
                w.free(cpu, o)


def _numa_remote(w: _Writer, rng: random.Random, p: dict[str, float], cpus: int) -> None:
    half = max(cpus // 2, 1)
    live: list[tuple[int, int]] = []
    for _ in range(int(p["ops"])):
        cpu = rng.randrange(cpus)
        live.append((w.alloc(cpu), cpu))
        if len(live) > 64:
            o, acpu = live.pop(rng.randrange(len(live)))
            node = 0 if acpu < half else 1
            if rng.random() < p["remote"]:
                others = range(half, cpus) if node == 0 else range(0, half)
            else:
                others = range(0, half) if node == 0 else range(half, cpus)
            w.free(rng.choice(list(others)), o)
    for o, acpu in live:
        w.free(acpu, o)


def _prefill_migrate(w: _Writer, rng: random.Random, p: dict[str, float], cpus: int) -> None:
    live: list[tuple[int, int]] = []
    sheaf = 0xFFFF888180000000
    for i in range(int(p["rounds"])):
        task = f"mt-{i % 97 + 10}"
        cpu = rng.randrange(cpus)
        use = cpu
        if cpus > 1 and rng.random() < p["migrate"]:
            use = (cpu + 1 + rng.randrange(cpus - 1)) % cpus
        n = int(p["reserve"])
        w._line(
            cpu,
            f"prefill_sheaf: (kmem_cache_prefill_sheaf+0x0/0x1c2) gfp=0xcc0 count={n} "
            f'name="{w.cache}" caller=gen',
            task,
        )
        w._line(
            use,
            f"prefill_sheaf_ret: (gen+0xa9/0xc3 <- kmem_cache_prefill_sheaf) sheaf=0x{sheaf:x}",
            task,
        )
        for _ in range(n):
            w._line(
                use,
                f"alloc_from_sheaf: (kmem_cache_alloc_from_sheaf_noprof+0x0/0x6f) "
                f'sheaf=0x{sheaf:x} size={n} name="{w.cache}"',
                task,
            )
            live.append((w.alloc(use, task), use))
        w._line(
            use,
            # (no size=: the generator does not know what the sheaf holds)
            f'return_sheaf: (kmem_cache_return_sheaf+0x0/0xdd) sheaf=0x{sheaf:x} name="{w.cache}"',
            task,
        )
        while len(live) > 48:
            o, c = live.pop(rng.randrange(len(live)))
            w.free(c, o)
    for o, c in live:
        w.free(c, o)


def _irq_mix(w: _Writer, rng: random.Random, p: dict[str, float], cpus: int) -> None:
    live: list[tuple[int, int]] = []
    for _ in range(int(p["ops"])):
        cpu = rng.randrange(cpus)
        if rng.random() < p["irq"]:
            x = w.alloc(cpu, task="<idle>-0", flags="d.h1.")
            w.free(cpu, x, flags="d.h1.")
            continue
        live.append((w.alloc(cpu), cpu))
        if len(live) > 32:
            o, c = live.pop(rng.randrange(len(live)))
            w.free(c, o)
    for o, c in live:
        w.free(c, o)


GENERATORS: dict[str, tuple[Callable[..., None], dict[str, float]]] = {
    "lifo": (_lifo, {"depth": 16, "cycles": 2000}),
    "prodcons": (_prodcons, {"ops": 20000, "backlog": 256, "remote": 0.5}),
    "bursts": (_bursts, {"rounds": 200, "burst": 200}),
    "mixed-lifetime": (
        _mixed,
        {"ops": 20000, "long_share": 0.1, "long_life": 5000, "short_life": 20},
    ),
    "kfree-rcu-storm": (_rcu_storm, {"rounds": 200, "burst": 100, "rcu_share": 0.8}),
    "numa-remote": (_numa_remote, {"ops": 20000, "remote": 0.3}),
    "prefill-migrate": (_prefill_migrate, {"rounds": 1000, "reserve": 4, "migrate": 0.3}),
    "irq-mix": (_irq_mix, {"ops": 20000, "irq": 0.1}),
}


def generate(
    kind: str,
    out: str | Path,
    cpus: int = 4,
    seed: int = 0,
    size: int = 64,
    cache: str | None = None,
    params: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Write a synthetic trace; return what was written (lines, parameters)."""
    if kind not in GENERATORS:
        raise SlubsimUsageError(f"unknown workload {kind!r}; choose from {', '.join(KINDS)}")
    if cpus < 1 or (kind == "numa-remote" and cpus < 2):
        raise SlubsimUsageError("need at least 1 CPU (2 for numa-remote)")
    fn, defaults = GENERATORS[kind]
    p = _params(defaults, params or {})
    name = cache or ("maple_node" if kind == "prefill-migrate" else f"gen{size}")
    rng = random.Random(seed)
    with open(out, "w") as f:
        w = _Writer(f, cpus, size, name)
        fn(w, rng, p, cpus)
    return {"kind": kind, "lines": w.lines, "cpus": cpus, "seed": seed, "params": p, "cache": name}


def import_rep(src: str | Path, out: str | Path, cpus: int = 4) -> dict[str, Any]:
    """Convert a CMU malloclab ``.rep`` trace to kmalloc/kfree ftrace text."""
    lines = Path(src).read_text().split("\n")
    body = [ln.strip() for ln in lines if ln.strip()]
    if len(body) < 4:
        raise SlubsimUsageError(f"{src}: not a malloclab trace (needs 4 header lines)")
    try:
        n_ids, n_ops = int(body[1]), int(body[2])
    except ValueError:
        raise SlubsimUsageError(f"{src}: bad header (ids and operation counts)") from None
    ops = body[4:]
    if len(ops) != n_ops:
        raise SlubsimUsageError(f"{src}: header says {n_ops} operations, file has {len(ops)}")
    live: dict[int, tuple[int, int]] = {}  # id -> (ptr, size class)
    next_ptr = BASE
    ts = 1.0
    written = 0
    with open(out, "w") as f:
        f.write(f"# tracer: nop\n#\n# entries-in-buffer/entries-written: 0/0   #P:{cpus}\n#\n")

        def emit(cpu: int, text: str) -> None:
            nonlocal ts, written
            ts += 0.000001
            written += 1
            f.write(f"  rep-1 [{cpu:03d}] ..... {ts:.6f}: {text}\n")

        def kmalloc(cpu: int, size: int) -> tuple[int, int]:
            nonlocal next_ptr
            cls = (
                kmalloc_index_size(max(size, 1))
                if size <= KMALLOC_MAX_CACHE_SIZE
                else 4096 << get_order(size)
            )
            ptr = next_ptr
            next_ptr += max(cls, 8)
            emit(
                cpu,
                f"kmalloc: call_site=rep+0x1/0x2 ptr={ptr:x} bytes_req={max(size, 1)} "
                f"bytes_alloc={cls} gfp_flags=GFP_KERNEL node=-1 accounted=false",
            )
            return ptr, cls

        for lineno, op in enumerate(ops, start=5):
            parts = op.split()
            try:
                kind, oid = parts[0], int(parts[1])
                size = int(parts[2]) if kind in ("a", "r") else 0
            except (IndexError, ValueError):
                raise SlubsimUsageError(f"{src}:{lineno}: bad operation {op!r}") from None
            if not 0 <= oid < n_ids:
                raise SlubsimUsageError(f"{src}:{lineno}: id {oid} out of range 0..{n_ids - 1}")
            cpu = oid % cpus
            if kind == "a":
                live[oid] = kmalloc(cpu, size)
            elif kind == "f":
                if oid in live:
                    ptr, _ = live.pop(oid)
                    emit(cpu, f"kfree: call_site=rep+0x3/0x4 ptr={ptr:x}")
            elif kind == "r":
                old = live.get(oid)
                need = (
                    kmalloc_index_size(max(size, 1))
                    if size <= KMALLOC_MAX_CACHE_SIZE
                    else 4096 << get_order(size)
                )
                if old is not None and old[1] == need:
                    continue  # krealloc in place: no events
                live[oid] = kmalloc(cpu, size)
                if old is not None:
                    emit(cpu, f"kfree: call_site=rep+0x3/0x4 ptr={old[0]:x}")
            else:
                raise SlubsimUsageError(f"{src}:{lineno}: unknown operation {kind!r}")
    return {
        "lines": written,
        "ids": n_ids,
        "operations": n_ops,
        "cpus": cpus,
        "policy": "cpu = id % cpus; sizes -> kmalloc classes; realloc = krealloc",
    }
