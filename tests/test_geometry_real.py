"""Geometry against the real 7.3.4 kernel: every cache of every 7.3 bundle.

For each sysfs directory in a bundle's ``slab_stats.json`` the test boots a
model kernel with the bundle's CPU and node count, creates the cache from what
the kernel was given (size, alignment request, flags, ctor, plus the creation
arguments sysfs does not show, listed in KNOWN_ARGS with their kernel source),
creates every alias name, and compares everything sysfs reports about the shape.
The creation arguments sysfs does not show come from ``slubsim.sysfs_import.known_args``
(each with its kernel source); nothing is imposed here, every value is derived.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import shared_bundles
from slubsim import Kernel, Machine
from slubsim.bundle import BundleMeta
from slubsim.constants import SYSFS_SIZING_ATTRS
from slubsim.kmalloc import parse_kmalloc_name
from slubsim.sysfs_import import flags_from_sysfs, known_args

BUNDLES = shared_bundles()


def check_bundle(bundle: Path) -> list[str]:
    meta = BundleMeta.load(bundle)
    stats = json.loads((bundle / "slab_stats.json").read_text())
    k = Kernel(
        Machine(cpus=meta.cpus, nodes=meta.nodes, cpu_nodes=meta.cpu_nodes),
        version=meta.kernel_version,
    )
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
            args = known_args(name, k.version)
            align = 0 if cfg["hwcache_align"] == "1" else int(cfg["align"])
            s = k.kmem_cache_create(
                name,
                size=int(cfg["object_size"]),
                align=align,
                flags=flags_from_sysfs(cfg),
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
                flags=flags_from_sysfs(cfg),
                ctor=bool(cfg["ctor"]),
                **known_args(alias, k.version),
            )
            if t is not s:
                problems.append(f"{bundle.name}:{sysdir}: {alias} did not merge into {s.name}")
        got = s.sysfs()
        for attr in (*SYSFS_SIZING_ATTRS, "cpu_partial", "aliases"):
            if attr not in cfg:
                continue  # 6.12 has no sheaf_capacity file
            if str(got[attr]) != str(cfg[attr]):
                problems.append(
                    f"{bundle.name}:{sysdir}: {attr} model={got[attr]} kernel={cfg[attr]}"
                )
        if s.sysfs_dir != sysdir:
            problems.append(f"{bundle.name}:{sysdir}: model directory {s.sysfs_dir}")
        if any(parse_kmalloc_name(n) for n in names) and not s.flags & 8:  # SLAB_KMALLOC
            problems.append(f"{bundle.name}:{sysdir}: kmalloc cache not marked SLAB_KMALLOC")
    return problems


@pytest.mark.skipif(not BUNDLES, reason="../shared/traces not present")
@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
def test_geometry_matches_real_kernel(bundle: Path) -> None:
    problems = check_bundle(bundle)
    assert not problems, "\n".join(problems)
