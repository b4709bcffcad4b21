"""A self-contained HTML report (and PNG plots) of a sweep.

Plots are drawn with matplotlib (imported lazily, Agg backend) and embedded as
base64 PNG, so the page needs no network and no other file.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from .analysis import RECOMMENDATION_COLUMNS, recommend, recommendation_cells


def _plot_cache(rec: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = rec["curve"]
    caps = [p["capacity"] for p in curve]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.0))
    panels = (
        ("lock_per_1k", "barn + list_lock / 1k ops"),
        ("alloc_hit_rate", "alloc hit rate (own sheaves / cpu slab)"),
        ("stranded_bytes_mean", "stranded memory, mean (KiB)"),
    )
    for ax, (key, title) in zip(axes, panels, strict=True):
        ys = [p[key] / 1024 if key == "stranded_bytes_mean" else p[key] for p in curve]
        ax.plot(caps, ys, marker="o")
        ax.set_xscale("log", base=2)
        ax.set_xticks(caps)
        ax.set_xticklabels([str(c) for c in caps])
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("sheaf capacity", fontsize=8)
        ax.axvline(rec["recommended_capacity"], color="tab:green", linestyle="--", linewidth=1)
        ax.axvline(rec["default_capacity"], color="tab:red", linestyle=":", linewidth=1)
        ax.tick_params(labelsize=7)
    fig.suptitle(
        f"{rec['cache']} ({rec['ops']:,} ops): green = recommended, red = default", fontsize=10
    )
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def build_report(
    rows: list[dict[str, Any]],
    out_html: str | Path,
    png_dir: str | Path | None = None,
    top: int = 12,
    title: str = "slubsim sweep report",
) -> list[dict[str, Any]]:
    """Write the HTML page (and PNGs); return the recommendations used."""
    recs = recommend(rows)
    if png_dir is not None:
        Path(png_dir).mkdir(parents=True, exist_ok=True)
    parts: list[str] = []
    esc = html.escape
    configs = sorted(
        {tuple(sorted((k, v) for k, v in r.items() if k.startswith("cfg_"))) for r in rows}
    )
    kernels = sorted({str(r["kernel"]) for r in rows})
    parts.append(
        f"<h1>{esc(title)}</h1><p>{len(rows):,} result rows, {len(configs)} configurations, "
        f"kernel model {esc(', '.join(kernels))}. Rule: smallest capacity whose lock traffic "
        "is within 1 % (or 0.1 ops/1k) of the best; stranded memory = time-weighted objects "
        "in sheaves and barns plus the sheaf structs.</p>"
    )
    parts.append("<h2>Recommendations (busiest caches first)</h2><table><tr>")
    parts.append("".join(f"<th>{c}</th>" for c in RECOMMENDATION_COLUMNS) + "</tr>")
    for r in recs:
        cells = [esc(c) for c in recommendation_cells(r)]
        parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts.append("</table>")
    adaptive = [(r["cache"], a) for r in recs for a in r["adaptive"]]
    if adaptive:
        parts.append("<h2>Adaptive policies</h2><table><tr>")
        acols = ["cache", "policy", "start", "final", "lock/1k", "stranded KiB"]
        parts.append("".join(f"<th>{c}</th>" for c in acols) + "</tr>")
        for cache, a in adaptive:
            cells = [
                esc(cache),
                esc(a["policy"]),
                str(a["start_capacity"]),
                str(a["final_capacity"]),
                f"{a['lock_per_1k']:.2f}",
                f"{a['stranded_bytes_mean'] / 1024:.1f}",
            ]
            parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        parts.append("</table>")
    parts.append("<h2>Curves</h2>")
    for r in recs[:top]:
        png = _plot_cache(r)
        if png_dir is not None:
            safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in r["cache"])
            (Path(png_dir) / f"{safe}.png").write_bytes(png)
        b64 = base64.b64encode(png).decode()
        parts.append(
            f'<figure><img class="plot" alt="{esc(r["cache"])} curves" '
            f'src="data:image/png;base64,{b64}"><figcaption>{esc(r["cache"])}</figcaption>'
            "</figure>"
        )
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px;"
        "text-align:right}th{background:#eee}img{max-width:100%}</style></head><body>"
        + "".join(parts)
        + "</body></html>"
    )
    Path(out_html).write_text(page)
    return recs
