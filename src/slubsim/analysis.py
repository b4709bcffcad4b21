"""What-if analysis on replay results: flat result rows, an allocator cost
estimate, and capacity recommendations.

Cost model
----------
An *estimate* of allocator CPU time per 1000 operations from the counters,
with per-path costs in nanoseconds (:data:`COST_DEFAULTS`, overridable).  The
defaults are order-of-magnitude figures for a current x86-64 core, not
measurements of the traced machine: a percpu sheaf push/pop is a handful of
instructions under a local lock (a few ns); a barn or ``list_lock`` acquisition
is an uncontended spinlock round trip plus list work (tens of ns, far more when
contended -- which is why lock traffic is reported separately); moving an
object between a sheaf and a slab freelist is a pointer write plus a likely
cache miss; a new slab is a page-allocator call (around a microsecond).  Use
them to rank configurations, not to predict absolute time.

Recommendation rule
-------------------
For each cache, among the swept sheaf capacities, take the **smallest capacity
whose lock traffic (barn + list_lock acquisitions per 1000 operations) is within
``tolerance`` (relative, default 1 %, with an absolute floor of ``floor`` ops/1k)
of the best capacity's**; report the memory it strands (time-weighted mean of
objects parked in sheaves and barns plus the sheaf structs themselves) and what
it saves against the kernel's default capacity (``calculate_sheaf_capacity``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from .flags import SlabFlag
from .geometry import calculate_sheaf_capacity

#: nanoseconds per event (estimates; see the module docstring)
COST_DEFAULTS: dict[str, float] = {
    "fastpath": 4.0,  # alloc_fastpath / free_fastpath, per object
    "slowpath_alloc": 60.0,  # alloc_slowpath, per object
    "slowpath_free": 50.0,  # free_slowpath, per call
    "object_move": 6.0,  # sheaf_refill / sheaf_flush, per object
    "barn_lock": 30.0,  # per barn->lock acquisition
    "list_lock": 40.0,  # per n->list_lock acquisition
    "new_slab": 900.0,  # alloc_slab, per slab (page allocator)
    "free_slab": 600.0,  # free_slab, per slab
}


def estimate_ns_per_1k(
    counters: dict[str, int],
    barn_lock: float,
    list_lock: float,
    ops: int,
    costs: dict[str, float] | None = None,
) -> float:
    """Estimated allocator time (ns) per 1000 traced operations."""
    c = dict(COST_DEFAULTS)
    if costs:
        c.update(costs)
    g = counters.get
    ns = (
        (g("alloc_fastpath", 0) + g("free_fastpath", 0)) * c["fastpath"]
        + g("alloc_slowpath", 0) * c["slowpath_alloc"]
        + g("free_slowpath", 0) * c["slowpath_free"]
        + (g("sheaf_refill", 0) + g("sheaf_flush", 0)) * c["object_move"]
        + barn_lock * c["barn_lock"]
        + list_lock * c["list_lock"]
        + g("alloc_slab", 0) * c["new_slab"]
        + g("free_slab", 0) * c["free_slab"]
    )
    return ns / ops * 1000.0 if ops else 0.0


def rows_from_result(
    result: dict[str, Any], config: dict[str, int], costs: dict[str, float] | None = None
) -> list[dict[str, Any]]:
    """One flat row per cache of a replay result (the sweep's table)."""
    rows: list[dict[str, Any]] = []
    for name, c in result["caches"].items():
        m = c["metrics"]
        ops = int(m["ops"])
        row: dict[str, Any] = {f"cfg_{k}": v for k, v in config.items()}
        pol = c.get("policy") or {}
        row["cfg_policy"] = pol.get("name", "fixed")
        row.update(
            {
                "final_capacity": pol.get("final_capacity", c["geometry"]["sheaf_capacity"]),
                "kernel": result["kernel"],
                "cache": name,
                "sysfs_dir": c["sysfs_dir"],
                "object_size": c["geometry"]["object_size"],
                "slab_size": c["geometry"]["slab_size"],
                "sheaf_capacity": c["geometry"]["sheaf_capacity"],
                "ops": ops,
                "alloc_hit_rate": m["alloc_hit_rate"],
                "free_hit_rate": m["free_hit_rate"],
                "barn_lock_per_1k": m["barn_lock_per_1k"],
                "list_lock_per_1k": m["list_lock_per_1k"],
                "lock_per_1k": m["barn_lock_per_1k"] + m["list_lock_per_1k"],
            }
        )
        for k, v in c["memory"].items():
            row[f"mem_{k}"] = v
        row["mem_stranded_bytes_mean"] = (
            c["memory"]["cached_bytes_mean"] + c["memory"]["sheaf_bytes_mean"]
        )
        for k, v in c["counters"].items():
            row[f"ctr_{k}"] = v
        row["est_ns_per_1k"] = estimate_ns_per_1k(
            c["counters"],
            m["barn_lock_per_1k"] * ops / 1000.0,
            m["list_lock_per_1k"] * ops / 1000.0,
            ops,
            costs,
        )
        rows.append(row)
    return rows


def default_capacity(slab_size: int) -> int:
    """The kernel's default (``calculate_sheaf_capacity`` with no request)."""
    return calculate_sheaf_capacity(slab_size, SlabFlag.NONE)


def recommend(
    rows: Iterable[dict[str, Any]],
    tolerance: float = 0.01,
    floor: float = 0.1,
    min_ops: int = 1000,
) -> list[dict[str, Any]]:
    """Apply the recommendation rule (module docstring) per cache.

    ``rows`` must come from a sweep that varied ``sheaf_capacity``; rows of
    caches without sheaves (capacity 0) are ignored."""
    by_cache: dict[str, list[dict[str, Any]]] = defaultdict(list)
    adaptive: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("cfg_policy", "fixed") != "fixed":
            adaptive[r["cache"]].append(r)
        elif "cfg_sheaf_capacity" in r and r["sheaf_capacity"]:
            by_cache[r["cache"]].append(r)
    out: list[dict[str, Any]] = []
    for cache, rs in by_cache.items():
        rs.sort(key=lambda r: r["cfg_sheaf_capacity"])
        if rs[0]["ops"] < min_ops:
            continue
        best = min(r["lock_per_1k"] for r in rs)
        limit = max(best * (1 + tolerance), best + floor)
        pick = next(r for r in rs if r["lock_per_1k"] <= limit)
        dflt = default_capacity(int(rs[0]["slab_size"]))
        ref = min(rs, key=lambda r: abs(r["cfg_sheaf_capacity"] - dflt))
        out.append(
            {
                "cache": cache,
                "sysfs_dir": pick["sysfs_dir"],
                "ops": pick["ops"],
                "recommended_capacity": pick["cfg_sheaf_capacity"],
                "lock_per_1k": pick["lock_per_1k"],
                "best_lock_per_1k": best,
                "stranded_bytes_mean": pick["mem_stranded_bytes_mean"],
                "alloc_hit_rate": pick["alloc_hit_rate"],
                "est_ns_per_1k": pick["est_ns_per_1k"],
                "default_capacity": dflt,
                "default_swept_as": ref["cfg_sheaf_capacity"],
                "default_lock_per_1k": ref["lock_per_1k"],
                "default_stranded_bytes_mean": ref["mem_stranded_bytes_mean"],
                "saves_bytes": ref["mem_stranded_bytes_mean"] - pick["mem_stranded_bytes_mean"],
                "saves_lock_per_1k": ref["lock_per_1k"] - pick["lock_per_1k"],
                "adaptive": [
                    {
                        "policy": a["cfg_policy"],
                        "start_capacity": a.get("cfg_sheaf_capacity"),
                        "final_capacity": a["final_capacity"],
                        "lock_per_1k": a["lock_per_1k"],
                        "stranded_bytes_mean": a["mem_stranded_bytes_mean"],
                        "alloc_hit_rate": a["alloc_hit_rate"],
                    }
                    for a in adaptive.get(cache, [])
                ],
                "curve": [
                    {
                        "capacity": r["cfg_sheaf_capacity"],
                        "lock_per_1k": r["lock_per_1k"],
                        "alloc_hit_rate": r["alloc_hit_rate"],
                        "stranded_bytes_mean": r["mem_stranded_bytes_mean"],
                        "est_ns_per_1k": r["est_ns_per_1k"],
                    }
                    for r in rs
                ],
            }
        )
    out.sort(key=lambda r: -int(r["ops"]))
    return out


#: column titles of a recommendation table (terminal and HTML)
RECOMMENDATION_COLUMNS = (
    "cache",
    "ops",
    "recommend",
    "lock/1k",
    "best lock/1k",
    "stranded KiB",
    "default",
    "default lock/1k",
    "default KiB",
    "saves KiB",
)


def recommendation_cells(r: dict[str, Any]) -> list[str]:
    """One recommendation formatted for :data:`RECOMMENDATION_COLUMNS`."""
    return [
        str(r["cache"]),
        f"{r['ops']:,}",
        str(r["recommended_capacity"]),
        f"{r['lock_per_1k']:.2f}",
        f"{r['best_lock_per_1k']:.2f}",
        f"{r['stranded_bytes_mean'] / 1024:.1f}",
        str(r["default_capacity"]),
        f"{r['default_lock_per_1k']:.2f}",
        f"{r['default_stranded_bytes_mean'] / 1024:.1f}",
        f"{r['saves_bytes'] / 1024:+.1f}",
    ]
