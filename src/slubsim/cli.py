"""The ``slubsim`` command line.

``slubsim ingest TRACE -o STORE`` parses once; ``slubsim inspect`` and
``slubsim replay`` take a trace (file or bundle directory) or a store.  With no
trace argument, ``replay`` and ``inspect`` use the small real trace shipped in
the package.  Bad input ends with one clear ``slubsim: error: ...`` line and
exit status 2, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from .constants import PRETRACE_POLICIES
from .errors import SlubsimError
from .generate import KINDS as GENERATOR_KINDS  # one list: irq-mix was missing from a copy

# slubsim never calls BLAS; OpenBLAS's idle worker threads were seen spinning
# (~2 % of samples) and would compete with sweep workers on small machines.
# Set before numpy is first imported (the CLI imports it lazily); a user's
# own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

#: the --set / --vary keys (replay.OVERRIDE_KEYS; spelled out here so that
#: --help does not import the model -- a test keeps the two equal)
SETTING_KEYS = (
    "sheaf_capacity, barn_max_full, barn_max_empty, min_partial, cpu_partial, "
    "pca_capacity, cpus, nodes"
)


def sample_trace() -> Path:
    """The embedded sample: a cut of a real Linux 7.3.4 trace bundle."""
    from importlib.resources import files

    return Path(str(files("slubsim") / "data" / "sample"))


@contextmanager
def _progress(label: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar (to stderr) for work that may take a while."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as prog:
        task = prog.add_task(label, total=None, info="")

        def cb(done: int, total: int) -> None:
            prog.update(task, info=f"{done:,}")

        yield cb


def _load(trace: str | None, skip_malformed: bool, quiet: bool) -> tuple[Any, str]:
    """A store from a .parquet store, a trace file or a bundle directory."""
    from .trace.ingest import ingest
    from .trace.store import EventStore, is_store

    path = Path(trace) if trace else sample_trace()
    if is_store(path):
        # streamed: replay reads record batches (memory follows live objects)
        return EventStore.open(path), str(path)
    show = not quiet and sys.stderr.isatty()
    with _progress(f"parsing {path.name}", show) as cb:
        store = ingest(path, skip_malformed=skip_malformed, progress=cb)
    return store, str(path)


def _fail(msg: str) -> None:
    click.echo(f"slubsim: error: {msg}", err=True)
    sys.exit(2)


def _run(fn: Callable[[], None]) -> None:
    try:
        fn()
    except SlubsimError as e:
        _fail(str(e))
    except (OSError, ValueError) as e:
        _fail(str(e))
    except KeyboardInterrupt:
        _fail("interrupted")


def _write_json(data: Any, dest: str) -> None:
    text = json.dumps(data, indent=2, sort_keys=False)
    if dest == "-":
        click.echo(text)
    else:
        Path(dest).write_text(text + "\n")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="slubsim")
def main() -> None:
    """slubsim: a counter-exact model of the Linux SLUB allocator's per-CPU layers,
    driven by real kernel allocation traces."""


@main.command()
@click.argument("trace", type=click.Path(exists=True))
@click.option("-o", "--output", required=True, type=click.Path(), help="store to write (.parquet)")
@click.option("--skip-malformed", is_flag=True, help="skip and count malformed lines")
@click.option("-q", "--quiet", is_flag=True)
def ingest(trace: str, output: str, skip_malformed: bool, quiet: bool) -> None:
    """Parse TRACE (ftrace/trace-cmd/perf text, plain/.gz/.xz/.zst, or a bundle
    directory) once into a columnar store."""

    def go() -> None:
        import time

        from .trace.ingest import ingest as do_ingest
        from .trace.store import is_store

        t0 = time.perf_counter()
        if is_store(trace):
            store, _ = _load(trace, skip_malformed, quiet)
            store.write(output)
        else:
            # streamed to the output file: memory bounded by one chunk of rows
            show = not quiet and sys.stderr.isatty()
            with _progress(f"parsing {Path(trace).name}", show) as cb:
                store = do_ingest(trace, skip_malformed=skip_malformed, progress=cb, out=output)
        dt = time.perf_counter() - t0
        if not quiet:
            lines = store.meta.get("lines", 0)
            click.echo(
                f"{trace}: {lines:,} lines, {store.n:,} events, {len(store.caches)} caches "
                f"-> {output} ({dt:.1f} s, {lines / max(dt, 1e-9) / 1e3:,.0f}k lines/s)"
            )
            _print_warnings(store.warnings)

    _run(go)


def _print_warnings(warnings: list[dict[str, Any]]) -> None:
    from rich.table import Table

    if not warnings:
        return
    t = Table(title="warnings", title_justify="left")
    t.add_column("kind")
    t.add_column("count", justify="right")
    t.add_column("explained")
    t.add_column("what / first location")
    for w in sorted(warnings, key=lambda w: (w.get("explained", True), -w["count"])):
        ex = (w.get("examples") or [""])[0]
        t.add_row(
            w["kind"],
            f"{w['count']:,}",
            "yes" if w.get("explained") else "[bold red]NO[/]",
            f"{w.get('detail', '')}" + (f"\n{ex}" if ex else ""),
        )
    _console().print(t)


@main.command()
@click.argument("trace", required=False, type=click.Path(exists=True))
@click.option("--skip-malformed", is_flag=True)
@click.option("--json", "json_out", type=str, default=None, help="write JSON to PATH or -")
def inspect(trace: str | None, skip_malformed: bool, json_out: str | None) -> None:
    """Events per cache, CPU and operation, time span and warnings of a trace or store."""

    def go() -> None:
        import numpy as np

        from .trace.events import OP_NAMES

        store, path = _load(trace, skip_malformed, json_out == "-")
        cols = store.columns
        ops = cols["op"]
        per_cache: dict[str, dict[str, int]] = {}
        for info in store.caches:
            mask = cols["cache"] == info["id"]
            if not mask.any():
                continue
            vals, counts = np.unique(ops[mask], return_counts=True)
            per_cache[info["name"]] = {
                OP_NAMES[int(v)]: int(c) for v, c in zip(vals, counts, strict=True)
            }
        cpus, ccounts = np.unique(cols["cpu"], return_counts=True)
        ovals, ocounts = np.unique(ops, return_counts=True)
        span = float(cols["ts"][-1] - cols["ts"][0]) if store.n else 0.0
        data = {
            "trace": path,
            "source": store.meta.get("source"),
            "recorded_kernel": store.meta.get("kernel_version"),
            "lines": store.meta.get("lines"),
            "events": store.n,
            "span_s": span,
            "machine": store.meta.get("machine"),
            "events_per_cpu": {str(int(c)): int(n) for c, n in zip(cpus, ccounts, strict=True)},
            "events_per_op": {
                OP_NAMES[int(o)]: int(n) for o, n in zip(ovals, ocounts, strict=True)
            },
            "caches": {
                name: {
                    "sysfs_dir": next(
                        (c["sysfs_dir"] for c in store.caches if c["name"] == name), None
                    ),
                    "events": ev,
                }
                for name, ev in sorted(per_cache.items(), key=lambda kv: -sum(kv[1].values()))
            },
            "warnings": store.warnings,
        }
        if json_out:
            _write_json(data, json_out)
            return
        from rich.table import Table

        con = _console()
        con.print(
            f"[bold]{path}[/]: {data['lines']:,} lines, {store.n:,} events over {span:.3f} s, "
            f"recorded on Linux {data['recorded_kernel']}, machine {data['machine']}"
        )
        con.print(
            "events per CPU: " + ", ".join(f"C{c}={n:,}" for c, n in data["events_per_cpu"].items())
        )
        con.print(
            "events per op: " + ", ".join(f"{o}={n:,}" for o, n in data["events_per_op"].items())
        )
        t = Table(title="events per cache (busiest first)", title_justify="left")
        t.add_column("cache")
        t.add_column("sysfs dir")
        opnames = ["alloc", "free", "kfree_rcu", "alloc_from_sheaf", "free_bulk", "alloc_bulk"]
        for o in opnames:
            t.add_column(o, justify="right")
        for name, c in list(data["caches"].items())[:25]:
            t.add_row(name, c["sysfs_dir"] or "", *[f"{c['events'].get(o, 0):,}" for o in opnames])
        con.print(t)
        _print_warnings(store.warnings)

    _run(go)


@main.command()
@click.argument("trace", required=False, type=click.Path(exists=True))
@click.option(
    "--kernel", "kernel", default=None, help="allocator generation (default: as recorded)"
)
@click.option("--cache", "caches", multiple=True, help="only these caches (any name/alias/dir)")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help=f"override: {SETTING_KEYS}",
)
@click.option(
    "--pretrace",
    type=click.Choice(PRETRACE_POLICIES),
    default="materialize",
    help="objects allocated before the trace: allocate them first, rebuild the slabs "
    "that held them from the traced pointers (slubsim.pretrace), or skip their frees",
)
@click.option("--json", "json_out", type=str, default=None, help="write JSON to PATH or -")
@click.option("--top", type=int, default=15, help="caches shown in the table")
@click.option("--skip-malformed", is_flag=True)
@click.option("--no-validate", is_flag=True, help="skip the final invariant check")
@click.option(
    "--policy",
    type=click.Choice(["fixed", "bonwick", "uma"]),
    default="fixed",
    help="adaptive sheaf capacity policy (slubsim.policies)",
)
@click.option(
    "--lockstep",
    is_flag=True,
    help="check each allocation against the traced pointer: did the model hand out "
    "the kernel's own object (meaningful under the recording generation)",
)
def replay(
    trace: str | None,
    kernel: str | None,
    caches: tuple[str, ...],
    sets: tuple[str, ...],
    pretrace: str,
    json_out: str | None,
    top: int,
    skip_malformed: bool,
    no_validate: bool,
    policy: str,
    lockstep: bool,
) -> None:
    """Replay TRACE (or the embedded sample) through the model and print the
    SLUB_STATS counters, memory and lock traffic per cache."""

    def go() -> None:
        from .replay import ReplayOptions, parse_overrides
        from .replay import replay as do_replay

        quiet = json_out == "-"
        store, path = _load(trace, skip_malformed, quiet)
        opts = ReplayOptions(
            kernel=kernel,
            caches=list(caches),
            overrides=parse_overrides(list(sets)),
            pretrace=pretrace,
            validate=not no_validate,
            policy=policy,
            lockstep=lockstep,
        )
        show = not quiet and sys.stderr.isatty()
        with _progress("replaying", show) as cb:
            opts.progress = cb
            result = do_replay(store, opts)
        result["trace"]["path"] = path
        if json_out:
            _write_json(result, json_out)
            if json_out == "-":
                return
        _print_replay(result, top)
        if lockstep:
            _print_lockstep({n: c["lockstep"] for n, c in result["caches"].items()})

    _run(go)


def _console() -> Any:
    import shutil

    from rich.console import Console

    width = None if sys.stdout.isatty() else max(shutil.get_terminal_size((140, 40)).columns, 140)
    return Console(width=width)


def _print_replay(result: dict[str, Any], top: int) -> None:
    from rich.table import Table

    con = _console()
    tr = result["trace"]
    con.print(
        f"[bold]Linux {result['kernel']} model[/] on {tr['cpus']} CPUs / {tr['nodes']} node(s): "
        f"{tr['events']:,} events of {tr['source']} ({tr['span_s']:.3f} s traced, recorded on "
        f"{tr['recorded_kernel']}), replayed in {tr['replay_seconds']:.2f} s; "
        f"pre-trace objects ({tr['pretrace_policy']}): {tr['pretrace_objects']:,}"
        + (
            f" in {tr['pretrace_slabs']['slabs']:,} rebuilt slabs"
            if tr.get("pretrace_slabs")
            else ""
        )
        + (f"; overrides {tr['overrides']}" if tr["overrides"] else "")
    )
    t = Table(title="per cache (busiest first)", title_justify="left")
    for col, just in (
        ("cache", "left"),
        ("sysfs dir", "left"),
        ("ops", "right"),
        ("alloc hit", "right"),
        ("free hit", "right"),
        ("refill", "right"),
        ("barn get/put", "right"),
        ("new slabs", "right"),
        ("barn lk/1k", "right"),
        ("list lk/1k", "right"),
        ("slabs pk", "right"),
        ("cached pk KiB", "right"),
    ):
        t.add_column(
            col,
            justify=just,  # type: ignore[arg-type]
            no_wrap=col in ("cache", "sysfs dir", "ops"),
            # ops of a 10^7-event trace must not be cut to "10,000…"
            min_width={"cache": 18, "sysfs dir": 10, "ops": 10, "barn get/put": 7}.get(col),
        )
    for name, c in list(result["caches"].items())[:top]:
        k = c["counters"]
        m = c["metrics"]
        mem = c["memory"]
        t.add_row(
            name,
            c["sysfs_dir"] if c["sysfs_dir"] and c["sysfs_dir"] != name else "",
            f"{m['ops']:,}",
            f"{m['alloc_hit_rate']:.1%}",
            f"{m['free_hit_rate']:.1%}",
            f"{k.get('sheaf_refill', 0):,}",
            f"{k.get('barn_get', 0):,}/{k.get('barn_put', 0):,}",
            f"{k.get('alloc_slab', 0):,}",
            f"{m['barn_lock_per_1k']:.1f}",
            f"{m['list_lock_per_1k']:.1f}",
            f"{mem['slabs_peak']:,}",
            f"{mem['cached_bytes_peak'] / 1024:,.1f}",
        )
    con.print(t)
    bad = [w for w in result["warnings"] if not w.get("explained", True)]
    con.print(
        f"{len(result['caches'])} caches replayed; warnings: "
        f"{sum(w['count'] for w in result['warnings']):,} "
        f"({sum(w['count'] for w in bad):,} unexplained) -- see --json for all counters"
    )


@main.command()
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "json_out", type=str, default=None, help="write JSON to PATH or -")
@click.option("--all", "show_all", is_flag=True, help="list exact counters too")
@click.option("--kernel", default=None, help="model generation (default: as recorded)")
@click.option(
    "--warm-sheaves",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    help="start each CPU's main sheaf this full (traces not taken from boot)",
)
@click.option(
    "--warm-first-use",
    is_flag=True,
    help="refill each CPU's cache silently at its first use (pre-trace state)",
)
@click.option(
    "--warm-from-counters/--no-warm-from-counters",
    default=None,
    help="set each cache's per-CPU sheaves, at its first 'before' read, to what the "
    "kernel's cumulative counters imply (default: on unless traced from boot)",
)
@click.option(
    "--second-pass/--one-pass",
    default=None,
    help="replay again where the kernel's counters, taken back to each cache's "
    "first read by the first replay's own movement, give other sheaves there "
    "(default: on unless --no-warm-from-counters)",
)
@click.option(
    "--pretrace",
    type=click.Choice(PRETRACE_POLICIES),
    default="reconstruct",
    help="slabs and objects that existed before the trace: rebuild them from the "
    "traced pointers (default), allocate the objects first, or skip their frees",
)
@click.option(
    "--lockstep",
    "lockstep_table",
    is_flag=True,
    help="list, per cache, how many allocations got the kernel's own object "
    "and where the model first parted from it",
)
@click.option(
    "--state",
    "state_table",
    is_flag=True,
    help="list the state files (slabs, objects, partial lists, cpu slabs) the model "
    "read otherwise than the kernel at the first or last read, with their change",
)
def validate(
    bundle: str,
    json_out: str | None,
    show_all: bool,
    kernel: str | None,
    warm_sheaves: float,
    warm_first_use: bool,
    warm_from_counters: bool | None,
    second_pass: bool | None,
    pretrace: str,
    lockstep_table: bool,
    state_table: bool,
) -> None:
    """Compare the model's SLUB_STATS deltas with the real kernel's, counter by
    counter, over exactly the same window of events (LAB_READ markers).

    Also checks every allocation in lockstep: the traced kernels do not
    randomise freelists, so model slabs are paired with the kernel's slabs (by
    the traced pointers) and each allocation either got the kernel's object or
    not (see slubsim.lockstep)."""

    def go() -> None:
        from .validate import validate_bundle

        quiet = json_out == "-"
        from .trace.ingest import ingest as do_ingest

        show = not quiet and sys.stderr.isatty()
        with _progress(f"parsing {Path(bundle).name}", show) as cb:
            from .bundle import BundleMeta

            meta = BundleMeta.load(bundle)
            from .kernel import GENERATIONS, VERSION_ALIASES

            version = kernel or VERSION_ALIASES.get(meta.kernel_version, meta.kernel_version)
            store = do_ingest(bundle, progress=cb) if version in GENERATIONS else None
        res = validate_bundle(
            bundle,
            store=store,
            kernel=kernel,
            warm_sheaves=warm_sheaves,
            warm_first_use=warm_first_use,
            warm_from_counters=warm_from_counters,
            second_pass=second_pass,
            pretrace=pretrace,
        )
        if json_out:
            out = {k: v for k, v in res.items() if k != "rows"}
            _write_json(out, json_out)
            if quiet:
                return
        _print_validation(res, show_all, lockstep_table, state_table)

    _run(go)


def _print_validation(
    res: dict[str, Any], show_all: bool, lockstep_table: bool = False, state_table: bool = False
) -> None:
    from rich.table import Table

    con = _console()
    if "skipped" in res:
        con.print(f"[bold]{res['bundle']}[/]: skipped -- {res['skipped']}")
        return
    rows = res["rows"]
    shown = [r for r in rows if show_all or r["rel_error"] > 0]
    t = Table(
        title=f"{res['bundle']}: Linux {res['kernel']} model vs the kernel's counters "
        f"({'all' if show_all else 'differing'} counters)",
        title_justify="left",
    )
    for col in ("cache", "sysfs dir", "counter", "kernel", "model", "diff", "rel err", "events"):
        t.add_column(
            col,
            justify="left" if col in ("cache", "sysfs dir", "counter") else "right",
            no_wrap=col in ("cache", "sysfs dir"),
        )
    for r in sorted(shown, key=lambda r: (-r["events"], r["cache"], r["counter"])):
        t.add_row(
            r["cache"],
            r["sysfs_dir"] if r["sysfs_dir"] != r["cache"] else "",
            r["counter"],
            f"{r['kernel']:,}",
            f"{r['model']:,}",
            f"{r['diff']:+,}",
            f"{r['rel_error']:.1%}",
            f"{r['events']:,}",
        )
    con.print(t)
    s = res["summary"]
    k = res["summary_key_counters_busy_caches"]
    w = res["warmup"]
    n = max(s["counters_compared"], 1)
    kn = max(k["counters_compared"], 1)
    con.print(
        f"all counters: {s['counters_compared']:,} compared, exact {s['exact'] / n:.1%}, "
        f"within 1% {s['within_1pct'] / n:.1%}, within 5% {s['within_5pct'] / n:.1%}\n"
        f"key counters of caches with >= 5,000 events: {k['counters_compared']} compared, "
        f"exact {k['exact'] / kn:.1%}, within 1% {k['within_1pct'] / kn:.1%}, "
        f"within 5% {k['within_5pct'] / kn:.1%}\n"
        + (
            "6.12 counters the traces determine (cpu_partial_*, deactivate_*, ...) of caches "
            f"with >= 5,000 events: {c612['counters_compared']} compared, exact "
            f"{c612['exact'] / max(c612['counters_compared'], 1):.1%}, within 5% "
            f"{c612['within_5pct'] / max(c612['counters_compared'], 1):.1%}\n"
            if (c612 := res.get("summary_classic_counters_busy_caches"))
            else ""
        )
        + f"warm-up: {w['pretrace_objects']:,} pre-trace objects ({w['pretrace_policy']}"
        + (
            f", {w['pretrace_slabs']['slabs']:,} slabs rebuilt from the pointers"
            if w.get("pretrace_slabs")
            else ""
        )
        + "); "
        + f"{w['counters_sensitive_to_warmup']} counters change agreement when they are ignored; "
        + (
            f"per-CPU sheaves of {len(w['caches_warmed_from_counters'])} caches set from the "
            "kernel's counters at their first read"
            + (
                f", {sum(w['sheaves_adopted_from_counters'].values())} empty sheaves of "
                f"{len(w['sheaves_adopted_from_counters'])} caches added to match the "
                "kernel's sheaf count"
                if w.get("sheaves_adopted_from_counters")
                else ""
            )
            if w["warm_from_counters"] and w["caches_warmed_from_counters"]
            else "sheaves not set from counters"
        )
        + (
            f"; replayed again with the sheaves of {len(w['second_pass'])} caches from the "
            "counters taken back to their first read by the first replay"
            if w.get("second_pass")
            else ""
        )
        + (
            f"; {sum(w['slabs_given_back'].values())} slabs of "
            f"{len(w['slabs_given_back'])} caches given back where the sheaves' objects were "
            "counted twice beside the partial slabs (more slabs than the kernel's)"
            if w.get("slabs_given_back")
            else ""
        )
        + (
            f"; {sum(v[1] for v in w['all_partial_nodes_kept'].values())} full slabs made "
            f"partial on {sum(v[0] for v in w['all_partial_nodes_kept'].values())} nodes whose "
            "every slab the kernel had partial"
            if w.get("all_partial_nodes_kept")
            else ""
        )
        + (
            f"; {w['rcu_sheaves_run_overdue']} rcu sheaves the trace never shows completing run "
            "where the kernel had run them (three grace periods after their submission)"
            if w.get("rcu_sheaves_run_overdue")
            else ""
        )
    )
    ls = res["lockstep"]
    con.print(
        f"lockstep: {ls['checked']:,} allocations checked, {ls['share']:.1%} got the kernel's "
        f"own object; {ls['caches_fully_in_step']} of {ls['caches_checked']} caches in step "
        f"throughout; the {ls['caches_started_in_step']} caches in step at their first "
        f"allocation got it {ls['share_in_caches_started_in_step']:.1%}"
        + (
            f"; at {sr['checked']:,} traced returns of prefilled sheaves the model's held "
            f"the kernel's count {sr['share']:.1%} of the time"
            if (sr := ls.get("sheaf_returns") or {}).get("checked")
            else ""
        )
        + ("" if lockstep_table else " (--lockstep: per cache)")
    )
    if lockstep_table:
        _print_lockstep(ls["caches"])
    ss = res.get("summary_state") or {}
    if ss.get("delta", {}).get("compared"):
        b, a, dl = ss["before"], ss["after"], ss["delta"]
        con.print(
            "state files (slabs, objects, partial lists, cpu slabs): as the kernel's at the "
            f"first read {b['same']} of {b['compared']}, at the last {a['same']} of "
            f"{a['compared']}; changed between them as the kernel's {dl['exact']} of "
            f"{dl['compared']} (within 5% {dl['within_5pct']})"
            + ("" if state_table else " (--state: which)")
        )
    if state_table:
        _print_state(res["caches"], show_all)
    ncpu = int(res.get("cpus") or 0)
    short = {
        d: v["filled_by_counters"] - v["traced"]
        for d, v in (res.get("rcu_sheaves") or {}).items()
        if v["filled_by_counters"] - v["traced"] > max(ncpu, 1)
    }
    if short:
        con.print(
            "rcu sheaves the counters say were filled but the trace never shows completing: "
            + ", ".join(f"{d} {n:,}" for d, n in sorted(short.items(), key=lambda kv: -kv[1]))
            + " -- more than the sheaves in flight at a window's ends, so most likely "
            "rcu_free_sheaf kprobe hits the recorder missed (the replay finds lost "
            "completions by aligning each CPU's submissions with them and makes them; "
            "slubsim.rcu_align)"
        )
    bf = res.get("rcu_batch_frees") or {}
    if bf.get("substituted") or bf.get("skipped"):
        con.print(
            f"kfree_rcu batch frees of the kernel whose object the model kept in an rcu sheaf "
            f"(it placed the object on another node): {bf['substituted']:,} freed another of "
            f"the model's batched objects instead, {bf['skipped']:,} found none left"
        )
    if res.get("allocs_during_irq"):
        con.print(
            f"allocations the kernel made while an interrupt on its CPU freed objects (a "
            f"fresh slab's first object right after irq-context frees): "
            f"{res['allocs_during_irq']:,}, replayed before those frees"
        )
    if res.get("kprobe_missed"):
        con.print(
            "kprobe hits missed while recording: "
            + ", ".join(f"{ev} {n:,}" for ev, n in sorted(res["kprobe_missed"].items()))
            + " -- those calls have no trace event, so counters they move can differ"
        )


def _print_state(caches: dict[str, dict[str, Any]], show_all: bool) -> None:
    """The state files of a validation (slubsim.validate.STATE_ATTRS): the
    kernel's and the model's at the first and last read and the change between
    them; only those read otherwise than the kernel unless ``show_all``."""
    from rich.table import Table

    if not any(c.get("state") for c in caches.values()):
        _console().print("state files: none read inside the trace")
        return
    t = Table(title="state at the first and last read", title_justify="left")
    for col in ("cache", "file", "kernel", "model", "change kernel", "change model", "events"):
        t.add_column(
            col, justify="left" if col in ("cache", "file", "kernel", "model") else "right"
        )
    for name, c in sorted(caches.items(), key=lambda kv: (-kv[1].get("events", 0), kv[0])):
        for attr, row in (c.get("state") or {}).items():
            if not show_all and all(
                v["kernel"] == v["model"] for w, v in row.items() if w != "delta"
            ):
                continue
            d = row.get("delta")
            t.add_row(
                name,
                attr,
                " -> ".join(row[w]["kernel"] for w in ("before", "after") if w in row),
                " -> ".join(row[w]["model"] for w in ("before", "after") if w in row),
                f"{d['kernel']:+,}" if d else "-",
                f"{d['model']:+,}" if d else "-",
                f"{c.get('events', 0):,}",
            )
    _console().print(t)


def _print_lockstep(steps: dict[str, dict[str, Any]]) -> None:
    """One row per cache of a lockstep result (slubsim.lockstep), busiest first."""
    from rich.table import Table

    t = Table(
        title="lockstep: allocations that got the kernel's own object",
        title_justify="left",
    )
    cols = ("cache", "checked", "same object", "in step until", "first divergence")
    sheaves = any(v.get("sheaf_returns", {}).get("checked") for v in steps.values())
    for col in cols + (("sheaf returns", "same size") if sheaves else ()):
        t.add_column(col, justify="left" if col in ("cache", "first divergence") else "right")
    items = [(n, v) for n, v in steps.items() if v["checked"]]
    for name, ls in sorted(items, key=lambda kv: (-kv[1]["checked"], kv[0])):
        fd = ls["first_divergence"]
        where = (
            f"t={fd['ts']:.6f} cpu{fd['cpu']} {fd['op']}: kernel {fd['kernel_ptr']}, "
            f"model {fd['model_ptr']}"
            if fd
            else "-"
        )
        sr = ls.get("sheaf_returns") or {}
        t.add_row(
            name,
            f"{ls['checked']:,}",
            f"{ls['share']:.1%}",
            f"{ls['in_step_prefix']:,}",
            where,
            *(
                (f"{sr['checked']:,}", f"{sr['share']:.1%}" if sr.get("checked") else "-")
                if sheaves
                else ()
            ),
        )
    _console().print(t)


@main.command()
@click.argument("trace", required=False, type=click.Path(exists=True))
@click.option(
    "--kernel",
    "kernels",
    default="6.12,rfc-pca,6.18,7.3",
    show_default=True,
    help="comma-separated generations to replay side by side",
)
@click.option("--cache", "caches", multiple=True, help="only these caches")
@click.option("--top", type=int, default=6, help="caches shown (busiest first)")
@click.option("--json", "json_out", type=str, default=None, help="write JSON to PATH or -")
def compare(
    trace: str | None, kernels: str, caches: tuple[str, ...], top: int, json_out: str | None
) -> None:
    """Replay one trace under several allocator generations; one table per cache."""

    def go() -> None:
        from .analysis import rows_from_result
        from .replay import ReplayOptions
        from .replay import replay as do_replay

        gens = [g.strip() for g in kernels.split(",") if g.strip()]
        store, _ = _load(trace, False, json_out == "-")
        by_gen: dict[str, dict[str, dict[str, Any]]] = {}
        for g in gens:
            res = do_replay(store, ReplayOptions(kernel=g, caches=list(caches), validate=False))
            by_gen[g] = {r["cache"]: r for r in rows_from_result(res, {})}
        if json_out:
            _write_json(by_gen, json_out)
            if json_out == "-":
                return
        from rich.table import Table

        first = by_gen[gens[0]]
        names = sorted(first, key=lambda n: -int(first[n]["ops"]))[:top]
        metrics = (
            ("ops", "{:,.0f}"),
            ("alloc_hit_rate", "{:.1%}"),
            ("free_hit_rate", "{:.1%}"),
            ("barn_lock_per_1k", "{:.2f}"),
            ("list_lock_per_1k", "{:.2f}"),
            ("ctr_alloc_slab", "{:,.0f}"),
            ("mem_slabs_peak", "{:,.0f}"),
            ("mem_stranded_bytes_mean", "{:,.0f}"),
            ("est_ns_per_1k", "{:,.0f}"),
        )
        con = _console()
        for name in names:
            t = Table(title=name, title_justify="left")
            t.add_column("metric")
            for g in gens:
                t.add_column(g, justify="right")
            for key, fmt in metrics:
                cells = []
                for g in gens:
                    row = by_gen[g].get(name)
                    cells.append(fmt.format(row[key]) if row is not None and key in row else "-")
                t.add_row(key, *cells)
            con.print(t)

    _run(go)


def _store_path(trace: str | None, quiet: bool) -> tuple[str, str]:
    """A store path for TRACE_OR_STORE (ingesting a trace to a temporary store)."""
    import tempfile

    from .trace.store import is_store

    if trace and is_store(trace):
        return trace, trace
    store, path = _load(trace, False, quiet)
    tmp = Path(tempfile.mkdtemp(prefix="slubsim-")) / "store.parquet"
    store.write(tmp)
    return str(tmp), path


def _executor(workers: int, scheduler: str | None) -> tuple[Any, Callable[[], None]]:
    """(executor or None, closer): local processes, or a Dask cluster."""
    if scheduler:
        import importlib

        try:
            dist: Any = importlib.import_module("distributed")  # lazy: heavy import
        except ImportError:
            raise click.UsageError(
                "--scheduler needs Dask distributed: pip install 'slubsim[cluster]'"
            ) from None
        if scheduler == "local":
            cluster = dist.LocalCluster(
                n_workers=max(workers, 1),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
            client = dist.Client(cluster)

            def close_local() -> None:
                client.close()
                cluster.close()

            return client.get_executor(), close_local
        remote = dist.Client(scheduler)
        return remote.get_executor(), remote.close
    if workers <= 1:
        return None, lambda: None
    from concurrent.futures import ProcessPoolExecutor

    ex = ProcessPoolExecutor(max_workers=workers)
    return ex, ex.shutdown


@main.command()
@click.argument("trace", required=False, type=click.Path(exists=True))
@click.option(
    "--vary",
    "vary",
    multiple=True,
    required=True,
    metavar="KEY=V1,V2,...",
    help=f"values to sweep ({SETTING_KEYS}); every combination runs",
)
@click.option("--kernel", default=None, help="model generation (default: as recorded)")
@click.option("--cache", "caches", multiple=True, help="only these caches")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(),
    help="results: .parquet (one row per config x cache) or .json",
)
@click.option(
    "--workers",
    type=int,
    default=2,
    show_default=True,
    help="local worker processes (1 = in this process)",
)
@click.option(
    "--scheduler", default=None, help="Dask scheduler address, or 'local' for a LocalCluster"
)
@click.option("--top", type=int, default=15, help="recommendations shown")
@click.option(
    "--policy",
    "policies",
    multiple=True,
    type=click.Choice(["fixed", "bonwick", "uma"]),
    help="capacity policies to run (default fixed; adaptive ones start from each swept capacity)",
)
def sweep(
    trace: str | None,
    vary: tuple[str, ...],
    kernel: str | None,
    caches: tuple[str, ...],
    output: str,
    workers: int,
    scheduler: str | None,
    top: int,
    policies: tuple[str, ...],
) -> None:
    """Replay TRACE_OR_STORE under every combination of the --vary values."""

    def go() -> None:
        import time

        from .analysis import recommend
        from .sweep import grid, parse_vary, write_rows
        from .sweep import sweep as do_sweep

        spec = parse_vary(list(vary))
        pols = tuple(dict.fromkeys(policies or ("fixed",)))
        store_path, path = _store_path(trace, False)
        n = len(grid(spec)) * len(pols)
        ex, close = _executor(min(workers, n), scheduler)
        t0 = time.perf_counter()
        try:
            show = sys.stderr.isatty()
            with _sweep_progress(n, show) as cb:
                rows = do_sweep(
                    store_path,
                    spec,
                    kernel=kernel,
                    caches=list(caches),
                    executor=ex,
                    progress=cb,
                    policies=pols,
                )
        finally:
            close()
        dt = time.perf_counter() - t0
        write_rows(rows, output)
        click.echo(
            f"{path}: {n} configurations x {len(rows) // max(n, 1)} caches "
            f"-> {output} ({len(rows):,} rows, {dt:.1f} s)"
        )
        if "sheaf_capacity" in spec:
            recs = recommend(rows)
            _print_recommendations(recs, top)
            if len(pols) > 1:
                _print_adaptive(recs, top)

    _run(go)


def _print_adaptive(recs: list[dict[str, Any]], top: int) -> None:
    from rich.table import Table

    t = Table(title="adaptive policies vs the recommended fixed capacity", title_justify="left")
    for col in (
        "cache",
        "policy",
        "start",
        "final",
        "lock/1k",
        "stranded KiB",
        "fixed rec",
        "fixed lock/1k",
        "fixed KiB",
    ):
        t.add_column(col, justify="left" if col in ("cache", "policy") else "right")
    for r in recs[:top]:
        for a in r["adaptive"]:
            t.add_row(
                r["cache"],
                a["policy"],
                str(a["start_capacity"]),
                str(a["final_capacity"]),
                f"{a['lock_per_1k']:.2f}",
                f"{a['stranded_bytes_mean'] / 1024:.1f}",
                str(r["recommended_capacity"]),
                f"{r['lock_per_1k']:.2f}",
                f"{r['stranded_bytes_mean'] / 1024:.1f}",
            )
    _console().print(t)


@contextmanager
def _sweep_progress(total: int, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TimeRemainingColumn

    with Progress(
        "[bold]sweeping",
        BarColumn(),
        "{task.completed}/{task.total}",
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as prog:
        task = prog.add_task("sweep", total=total)

        def cb(done: int, n: int) -> None:
            prog.update(task, completed=done)

        yield cb


def _print_recommendations(recs: list[dict[str, Any]], top: int) -> None:
    from rich.table import Table

    from .analysis import RECOMMENDATION_COLUMNS, recommendation_cells

    t = Table(
        title="sheaf capacity recommendations (rule: smallest capacity within 1% of "
        "the best lock traffic)",
        title_justify="left",
    )
    for col in RECOMMENDATION_COLUMNS:
        t.add_column(col, justify="left" if col == "cache" else "right", no_wrap=col == "cache")
    for r in recs[:top]:
        t.add_row(*recommendation_cells(r))
    _console().print(t)


@main.command()
@click.argument("results", type=click.Path(exists=True))
@click.option(
    "--tolerance",
    type=float,
    default=0.01,
    show_default=True,
    help="lock traffic within this fraction of the best counts as equal",
)
@click.option(
    "--floor",
    type=float,
    default=0.1,
    show_default=True,
    help="absolute tolerance in lock acquisitions per 1k ops",
)
@click.option("--json", "json_out", type=str, default=None, help="write JSON to PATH or -")
@click.option("--top", type=int, default=20)
def recommend(results: str, tolerance: float, floor: float, json_out: str | None, top: int) -> None:
    """Per-cache sheaf capacity on the knee of lock traffic vs memory, from a sweep."""

    def go() -> None:
        from .analysis import recommend as do_recommend
        from .sweep import read_rows

        recs = do_recommend(read_rows(results), tolerance=tolerance, floor=floor)
        if not recs:
            raise click.UsageError("no sheaf_capacity sweep rows in these results")
        if json_out:
            _write_json(recs, json_out)
            if json_out == "-":
                return
        _print_recommendations(recs, top)

    _run(go)


@main.command()
@click.argument("results", type=click.Path(exists=True))
@click.option("-o", "--output", required=True, type=click.Path(), help="HTML file to write")
@click.option("--png", "png_dir", type=click.Path(), default=None, help="also write PNGs here")
@click.option("--top", type=int, default=12, help="caches with plots")
def report(results: str, output: str, png_dir: str | None, top: int) -> None:
    """A self-contained HTML report of a sweep (curves + recommendation table)."""

    def go() -> None:
        from .report import build_report
        from .sweep import read_rows

        rows = read_rows(results)
        recs = build_report(rows, output, png_dir, top=top)
        click.echo(f"{output}: {len(recs)} caches, {min(top, len(recs))} with plots")

    _run(go)


@main.command()
@click.argument("name", type=click.Choice(["cpu-partial", "migration", "irq"]))
@click.option("--json", "json_out", type=str, default=None, help="write JSON to PATH or -")
def scenario(name: str, json_out: str | None) -> None:
    """Run a scenario answering a design question of the 2023 RFC review."""

    def go() -> None:
        from rich.table import Table

        from .scenarios import run as run_scenario

        res = run_scenario(name)
        if json_out:
            _write_json(res, json_out)
            if json_out == "-":
                return
        runs = res["runs"]
        keys = list(next(iter(runs.values())))
        t = Table(title=f"scenario {name}", title_justify="left")
        t.add_column("run")
        for key in keys:
            t.add_column(key, justify="right")
        for run_name, vals in runs.items():
            t.add_row(
                run_name, *[f"{v:.3f}" if isinstance(v, float) else f"{v:,}" for v in vals.values()]
            )
        _console().print(t)

    _run(go)


@main.command()
@click.argument(
    "kind",
    type=click.Choice(GENERATOR_KINDS),
)
@click.option("-o", "--output", required=True, type=click.Path(), help="trace file to write")
@click.option("--cpus", type=int, default=4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--size", type=int, default=64, show_default=True, help="object size")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="workload parameter (see slubsim.generate for each kind's keys)",
)
def generate(
    kind: str, output: str, cpus: int, seed: int, size: int, params: tuple[str, ...]
) -> None:
    """Write a synthetic workload as ftrace text (replayable like a real trace)."""

    def go() -> None:
        from .generate import generate as do_generate

        kv: dict[str, float] = {}
        for item in params:
            if "=" not in item:
                raise click.UsageError(f"--param expects KEY=VALUE, got {item!r}")
            k, v = item.split("=", 1)
            try:
                kv[k.strip()] = float(v)
            except ValueError:
                raise click.UsageError(f"--param {k}: {v!r} is not a number") from None
        info = do_generate(kind, output, cpus=cpus, seed=seed, size=size, params=kv)
        click.echo(
            f"{output}: {info['lines']:,} events of {kind} on {cpus} CPUs "
            f"(seed {seed}, {info['params']})"
        )

    _run(go)


@main.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False),
    help="bundle directory to create",
)
@click.option("--duration", type=float, default=None, help="seconds to record (no command)")
@click.option(
    "--buffer-kb", type=int, default=262144, show_default=True, help="per-CPU ring buffer size"
)
@click.option("--no-kprobes", is_flag=True, help="only the kmem tracepoints")
@click.option("--tracefs", type=click.Path(), default="/sys/kernel/tracing", show_default=True)
@click.option("--sysfs-slab", type=click.Path(), default="/sys/kernel/slab", show_default=True)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def record(
    output: str,
    duration: float | None,
    buffer_kb: int,
    no_kprobes: bool,
    tracefs: str,
    sysfs_slab: str,
    command: tuple[str, ...],
) -> None:
    """Record a trace bundle on this machine (root): kmem events, kprobes, the
    slab counters before and after, around `-- CMD ARGS` or for --duration."""

    def go() -> None:
        from .record import Recorder, RecordPaths

        rec = Recorder(
            out=Path(output),
            paths=RecordPaths(tracefs=Path(tracefs), slab=Path(sysfs_slab)),
            buffer_kb=buffer_kb,
            kprobes=not no_kprobes,
            duration=duration,
            command=list(command) or None,
            log=lambda m: click.echo(m, err=True),
        )
        info = rec.run()
        click.echo(
            f"{output}: {info['caches']} caches, {info['kprobes']} kprobes, trace "
            f"{'complete' if info['complete'] else 'INCOMPLETE (events lost)'}"
        )

    _run(go)


@main.command(name="import-rep")
@click.argument("rep", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(), help="trace file to write")
@click.option("--cpus", type=int, default=4, show_default=True)
def import_rep(rep: str, output: str, cpus: int) -> None:
    """Convert a CMU malloclab .rep trace into kmalloc/kfree ftrace text."""

    def go() -> None:
        from .generate import import_rep as do_import

        info = do_import(rep, output, cpus=cpus)
        click.echo(
            f"{output}: {info['lines']:,} events from {info['operations']:,} operations "
            f"({info['policy']})"
        )

    _run(go)


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
