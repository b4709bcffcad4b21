"""The RFC-review scenarios: each answers its question with numbers."""

from __future__ import annotations

from click.testing import CliRunner

from slubsim.cli import main
from slubsim.scenarios import cpu_partial, irq, migration


def test_cpu_partial_lists_save_list_lock_traffic_beside_the_array() -> None:
    runs = cpu_partial()["runs"]
    on, off = runs["rfc-pca, cpu partial on"], runs["rfc-pca, cpu_partial=0"]
    assert off["list_lock_per_1k"] > 2 * on["list_lock_per_1k"]
    assert runs["7.3 (sheaves, no cpu partial)"]["alloc_slowpath_rate"] < on["alloc_slowpath_rate"]


def test_migration_strands_rfc_reserves_but_not_prefilled_sheaves() -> None:
    res = migration(p=0.5, rounds=300)["runs"]
    assert res["7.3"]["reserve_served_fraction"] == 1.0  # the task holds its sheaf
    assert res["rfc-pca"]["migrations"] > 100
    assert res["rfc-pca"]["objects_left_in_other_cpus_arrays"] > 0
    never = migration(p=0.0, rounds=200)["runs"]["rfc-pca"]
    assert never["reserve_served_fraction"] == 1.0 and never["migrations"] == 0


def test_irq_under_held_lock_always_bypasses_and_costs_more_on_73() -> None:
    res = irq(q=0.3, ops=3000)["runs"]
    for v in ("rfc-pca", "7.3"):
        assert res[v]["irq_allocs"] > 500 and res[v]["bypass_rate"] == 1.0
    # 7.3 has no cpu slab under the sheaves: every bypassed irq allocation is slow
    assert res["7.3"]["alloc_slowpath"] >= res["7.3"]["irq_allocs"]
    assert res["rfc-pca"]["alloc_slowpath"] < res["7.3"]["alloc_slowpath"]


def test_scenario_command() -> None:
    r = CliRunner().invoke(main, ["scenario", "irq", "--json", "-"])
    assert r.exit_code == 0 and '"bypass_rate": 1.0' in r.stdout
