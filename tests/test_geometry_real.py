"""Geometry against the real 7.3.4 kernel: every cache of every 7.3 bundle.

For each sysfs directory in a bundle's ``slab_stats.json`` the test boots a
model kernel with the bundle's CPU and node count, creates the cache from what
the kernel was given (size, alignment request, flags, ctor, plus the creation
arguments sysfs does not show, listed in KNOWN_ARGS with their kernel source),
creates every alias name, and compares everything sysfs reports about the shape.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import shared_bundles
from slubsim import Kernel, Machine
from slubsim.bundle import BundleMeta
from slubsim.kmalloc import parse_kmalloc_name

# Creation arguments that sysfs does not show (kernel source of 7.3):
KNOWN_ARGS: dict[str, dict[str, Any]] = {
    # lib/maple_tree.c maple_tree_init(): kmem_cache_args.sheaf_capacity = 32
    "maple_node": {"sheaf_capacity": 32},
    # mm/vma_init.c: sheaf_capacity 32, freeptr_offset (TYPESAFE_BY_RCU)
    "vm_area_struct": {"sheaf_capacity": 32, "freeptr_offset": 0},
    # fs/file_table.c: kmem_cache_create(... freeptr_offset ...) for files
    "filp": {"freeptr_offset": 0},
    "bfilp": {"freeptr_offset": 0},
    # net/ipv4/tcp_ipv4.c: struct proto tcp_prot with freeptr_offset
    "TCP": {"freeptr_offset": 0},
    # net/core/skbuff.c: kmem_cache_create_usercopy() => usersize, unmergeable
    "skbuff_head_cache": {"usersize": 1},
}

BUNDLES = shared_bundles("7.3")


def _flags(cfg: dict[str, str]) -> set[str]:
    out = set()
    if cfg.get("hwcache_align") == "1":
        out.add("SLAB_HWCACHE_ALIGN")
    if cfg.get("reclaim_account") == "1":
        out.add("SLAB_RECLAIM_ACCOUNT")
    if cfg.get("destroy_by_rcu") == "1":
        out.add("SLAB_TYPESAFE_BY_RCU")
    return out


def check_bundle(bundle: Path) -> list[str]:
    meta = BundleMeta.load(bundle)
    stats = json.loads((bundle / "slab_stats.json").read_text())
    k = Kernel(Machine(cpus=meta.cpus, nodes=meta.nodes, cpu_nodes=meta.cpu_nodes))
    problems: list[str] = []
    for sysdir, info in stats.items():
        cfg = info["config"]
        names: list[str] = info["names"]
        existing = [n for n in names if n in k.by_name]
        if existing:
            s = k.cache(existing[0])
        else:
            # the surviving cache of a merge: prefer a kmalloc name, else the first
            name = names[0]
            args = dict(KNOWN_ARGS.get(name, {}))
            align = 0 if cfg["hwcache_align"] == "1" else int(cfg["align"])
            s = k.kmem_cache_create(
                name,
                size=int(cfg["object_size"]),
                align=align,
                flags=_flags(cfg),
                ctor=bool(cfg["ctor"]),
                **args,
            )
        for alias in names:
            if alias in k.by_name:
                continue
            align = 0 if cfg["hwcache_align"] == "1" else int(cfg["align"])
            t = k.kmem_cache_create(
                alias,
                size=int(cfg["object_size"]),
                align=align,
                flags=_flags(cfg),
                ctor=bool(cfg["ctor"]),
                **KNOWN_ARGS.get(alias, {}),
            )
            if t is not s:
                problems.append(f"{bundle.name}:{sysdir}: {alias} did not merge into {s.name}")
        got = s.sysfs()
        for attr in (
            "object_size",
            "slab_size",
            "align",
            "order",
            "objs_per_slab",
            "min_partial",
            "sheaf_capacity",
            "aliases",
        ):
            if str(got[attr]) != str(cfg[attr]):
                problems.append(
                    f"{bundle.name}:{sysdir}: {attr} model={got[attr]} kernel={cfg[attr]}"
                )
        if s.sysfs_dir != sysdir:
            problems.append(f"{bundle.name}:{sysdir}: model directory {s.sysfs_dir}")
        if any(parse_kmalloc_name(n) for n in names) and not s.flags & 8:  # SLAB_KMALLOC
            problems.append(f"{bundle.name}:{sysdir}: kmalloc cache not marked SLAB_KMALLOC")
    return problems


@pytest.mark.skipif(not BUNDLES, reason="../shared/traces (7.3 bundles) not present")
@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
def test_geometry_matches_real_kernel(bundle: Path) -> None:
    problems = check_bundle(bundle)
    assert not problems, "\n".join(problems)
