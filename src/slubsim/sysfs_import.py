"""Recreate a real kernel's caches from its sysfs snapshot (``slab_stats.json``).

sysfs shows the result of cache creation (object size, alignment, flags as
booleans, ctor presence) but not every creation argument.  The arguments it
hides are listed in :data:`KNOWN_ARGS` with their kernel source.  A cache is
created with the kernel's own rules and then checked against the reported
geometry; where the model cannot derive it (an unknown creation argument), the
reported geometry is imposed and the difference reported.
"""

from __future__ import annotations

from typing import Any

from .cache import KmemCache
from .constants import SYSFS_SIZING_ATTRS
from .kernel import Kernel

#: Creation arguments sysfs does not show (7.3 kernel sources).
KNOWN_ARGS: dict[str, dict[str, Any]] = {
    # lib/maple_tree.c maple_tree_init(): kmem_cache_args.sheaf_capacity = 32
    "maple_node": {"sheaf_capacity": 32},
    # mm/vma_init.c: sheaf_capacity 32, freeptr_offset (TYPESAFE_BY_RCU)
    "vm_area_struct": {"sheaf_capacity": 32, "freeptr_offset": 0},
    # fs/file_table.c: freeptr_offset for files
    "filp": {"freeptr_offset": 0},
    "bfilp": {"freeptr_offset": 0},
    # net/ipv4/tcp_ipv4.c: tcp_prot with freeptr_offset
    "TCP": {"freeptr_offset": 0},
    # net/core/skbuff.c: kmem_cache_create_usercopy() => usersize, unmergeable
    "skbuff_head_cache": {"usersize": 1},
}

#: Arguments of KNOWN_ARGS that the named kernel generation does not have.
NOT_IN_VERSION: dict[str, dict[str, tuple[str, ...]]] = {
    # 6.12 tcp_prot has no freeptr_offset (TCP is 2240 + free pointer -> 2304)
    "6.12": {"TCP": ("freeptr_offset",)},
}


def known_args(name: str, version: str) -> dict[str, Any]:
    """Creation arguments of a real kernel cache that sysfs does not show."""
    args = dict(KNOWN_ARGS.get(name, {}))
    for key in NOT_IN_VERSION.get(version, {}).get(name, ()):
        args.pop(key, None)
    return args


GEOMETRY_ATTRS = SYSFS_SIZING_ATTRS


def flags_from_sysfs(cfg: dict[str, Any]) -> set[str]:
    """SLAB_* flag names from sysfs booleans (hwcache_align, poison, ...)."""
    out = set()
    if str(cfg.get("hwcache_align")) == "1":
        out.add("SLAB_HWCACHE_ALIGN")
    if str(cfg.get("reclaim_account")) == "1":
        out.add("SLAB_RECLAIM_ACCOUNT")
    if str(cfg.get("destroy_by_rcu")) == "1":
        out.add("SLAB_TYPESAFE_BY_RCU")
    for attr, flag in (
        ("red_zone", "SLAB_RED_ZONE"),
        ("poison", "SLAB_POISON"),
        ("store_user", "SLAB_STORE_USER"),
        ("sanity_checks", "SLAB_CONSISTENCY_CHECKS"),
        ("trace", "SLAB_TRACE"),
    ):
        if str(cfg.get(attr)) == "1":
            out.add(flag)
    return out


def create_from_sysfs(
    k: Kernel, name: str, aliases: list[str], cfg: dict[str, Any]
) -> tuple[KmemCache, list[str]]:
    """Create (or find) the cache ``name`` so that it matches ``cfg``; return it
    and the list of geometry attributes that had to be imposed."""
    s = k.by_name.get(name)
    if s is None:
        align = 0 if str(cfg.get("hwcache_align")) == "1" else int(cfg.get("align", 0) or 0)
        if align & (align - 1):
            align = 0
        s = k.kmem_cache_create(
            name,
            size=int(cfg["object_size"]),
            align=align,
            flags=flags_from_sysfs(cfg),
            ctor=bool(cfg.get("ctor")),
            **known_args(name, k.version),
        )
    for alias in aliases:
        if alias not in k.by_name and alias not in s.aliases:
            s.aliases.append(alias)
            k.by_name[alias] = s
    imposed = impose_geometry(s, cfg)
    return s, imposed


def impose_geometry(s: KmemCache, cfg: dict[str, Any]) -> list[str]:
    """Make the model cache's geometry equal to the reported one."""
    got = s.sysfs()
    imposed = [
        a for a in GEOMETRY_ATTRS if a in cfg and str(got[a]) != str(cfg[a]) and a != "align"
    ]
    if not imposed:
        return []
    kw: dict[str, int] = {}
    for a in imposed:
        kw[a] = int(cfg[a])
    s.reconfigure(**kw)
    return imposed
