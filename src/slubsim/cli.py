"""The ``slubsim`` command line."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="slubsim")
def main() -> None:
    """slubsim: a counter-exact model of the Linux SLUB allocator's per-CPU layers."""


@main.command()
@click.argument("name", type=click.Choice(["A", "C", "D"], case_sensitive=False))
@click.option("--cpus", type=int, default=None, help="possible CPUs (default: the spec's)")
def example(name: str, cpus: int | None) -> None:
    """Run one of the spec's worked examples and print the sysfs counters."""
    from rich.console import Console
    from rich.table import Table

    from .examples import EXAMPLES

    fn = EXAMPLES[name.upper()]
    k, s = fn(cpus) if cpus else fn()
    k.validate()
    table = Table(title=f"worked example {name.upper()}: {s.name} on Linux {k.version} model")
    table.add_column("counter")
    table.add_column("sysfs text")
    for item in s.stat_items:
        text = s.stats_text(item)
        if text != "0":
            table.add_row(item, text)
    Console().print(table)
