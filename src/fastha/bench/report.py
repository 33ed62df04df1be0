"""Output shared by the network benchmarks: a rich table and progress bar while they
run, JSON (orjson) for machines, a PNG (matplotlib, Agg) for people.

rich and matplotlib are imported inside the functions that use them: they are the
``bench`` extra, and nothing else in fastha needs them.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from fastha.bench import measure

F = TypeVar("F", bound=Callable[..., Any])

COLS = ("p50", "p99", "p99.9", "max")
PEER_COLOUR = {"fastha": "tab:blue", "keepalived": "tab:orange"}


def ratio(a: float | None, b: float | None) -> float:
    """a / b, nan when either is missing or b is 0 (orjson writes nan as null)."""
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return math.nan
    return a / b


def ratios(x: Mapping[str, float], y: Mapping[str, float]) -> dict[str, float]:
    return {c: ratio(x.get(c), y.get(c)) for c in COLS}


def fmt(v: float | None, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}"


def dumps(doc: Any) -> str:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode()


def table(
    title: str, columns: Sequence[str], rows: Iterable[Sequence[str]], caption: str = ""
) -> Any:
    """A rich Table: the first column left-aligned, the rest right-aligned."""
    from rich.table import Table

    t = Table(title=title, caption=caption or None, title_justify="left", caption_justify="left")
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i == 0 else "right", no_wrap=True)
    for r in rows:
        if r and r[0] == "---":
            t.add_section()
            continue
        t.add_row(*r)
    return t


class LiveReport:
    """A live view on stderr: the benchmark's table (re-rendered by ``render``) above a
    progress bar. On a terminal it is transient (the final table is printed once to
    stdout by the caller); elsewhere rich prints nothing until the end."""

    def __init__(self, description: str, total: int, render: Callable[[], Any]) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.render = render
        self.description = description
        self.total = total
        self._live: Any = None
        self._progress: Any = None
        self._task: Any = None

    def _group(self) -> Any:
        from rich.console import Group

        return Group(self.render(), self._progress)

    def __enter__(self) -> LiveReport:
        from rich.live import Live
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
        )
        self._task = self._progress.add_task(self.description, total=self.total)
        if self.console.is_terminal:
            self._live = Live(
                self._group(), console=self.console, transient=True, refresh_per_second=8
            )
            self._live.__enter__()
        return self

    def advance(self, n: int = 1, description: str | None = None) -> None:
        kw = {} if description is None else {"description": description}
        self._progress.update(self._task, advance=n, **kw)
        self.refresh()

    def note(self, description: str) -> None:
        self._progress.update(self._task, description=description)
        if not self.console.is_terminal:
            self.console.print(description, highlight=False)
        self.refresh()

    def refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._group())

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)


def print_tables(*tables: Any) -> None:
    from rich.console import Console

    console = Console(file=sys.stdout)
    if not console.is_terminal:
        console = Console(file=sys.stdout, width=160)  # a log file: do not squash columns
    for t in tables:
        console.print(t)


KIND_STYLE = {"kill": "-", "term": "--", "link": ":"}
KIND_MARKER = {"kill": "o", "term": "s", "link": "^"}
FEW = 20  # fewer trials than this: min/median/max and the points, not a CDF


def _hist_panel(
    ax: Any, hist: Mapping[str, Sequence[float]], xlabel: str, lines: Mapping[str, float] | None
) -> None:
    allv = [v for s in hist.values() for v in s if not math.isnan(v)]
    if allv:
        lo, hi = min(allv), max(allv)
        bins = 80 if hi > lo else 1
        used: set[str | None] = set()
        for label, series in hist.items():
            vals = [v for v in series if not math.isnan(v)]
            if not vals:
                continue
            colour = _colour(label)
            # A second series of one implementation (jitter's load phase): an outline,
            # so it stays apart from the filled first one.
            outline = colour in used
            used.add(colour)
            ax.hist(
                vals,
                bins=bins,
                range=(lo, hi) if hi > lo else None,
                alpha=1.0 if outline else 0.55,
                histtype="step" if outline else "bar",
                linewidth=1.5,
                linestyle="--" if outline else "-",
                label=f"{label} (n={len(vals)})",
                color=colour,
            )
        ax.set_yscale("log")
    else:
        ax.text(0.5, 0.5, "no samples", ha="center", transform=ax.transAxes)
    _mark_lines(ax, lines, 1, "top")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count (log)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def plot_failover(
    path: str | Path,
    title: str,
    hist: Mapping[str, Sequence[float]],
    hist_xlabel: str,
    over_bound: Mapping[str, Mapping[str, Sequence[float]]],
    bounds: Mapping[str, float],
    hist_lines: Mapping[str, float] | None = None,
) -> Path:
    """Advert intervals (left) and failover time minus each kind's own bound (right):
    `over_bound[kind][impl]` in ms, so every kind is read against 0 = its bound. A kind
    has one line style (and marker) whatever the implementation; an implementation one
    colour. With few trials each series is its points with min/median/max; with many,
    an empirical CDF."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5), constrained_layout=True)
    fig.suptitle(title)
    _hist_panel(ax1, hist, hist_xlabel, hist_lines)
    rows = [
        (kind, impl, sorted(v for v in vals if v is not None and not math.isnan(v)))
        for kind, by_impl in over_bound.items()
        for impl, vals in by_impl.items()
    ]
    rows = [r for r in rows if r[2]]
    few = all(len(r[2]) < FEW for r in rows)
    if not rows:
        ax2.text(0.5, 0.5, "no samples", ha="center", transform=ax2.transAxes)
    elif few:
        labels: list[str] = []
        for y, (kind, impl, vals) in enumerate(rows):
            colour, style = _colour(impl), KIND_STYLE.get(kind, "-")
            med = (
                vals[len(vals) // 2]
                if len(vals) % 2
                else (vals[len(vals) // 2 - 1] + vals[len(vals) // 2]) / 2
            )
            ax2.hlines(y, vals[0], vals[-1], colors=colour, linestyles=style, linewidth=2)
            ax2.plot(
                vals,
                [y] * len(vals),
                KIND_MARKER.get(kind, "o"),
                color=colour,
                alpha=0.5,
                markersize=5,
            )
            ax2.plot([med], [y], "|", color="black", markersize=16, markeredgewidth=2)
            labels.append(
                f"{impl} {kind} (bound {bounds.get(kind, float('nan')):.1f} ms)\n"
                f"min {vals[0]:+.2f} med {med:+.2f} max {vals[-1]:+.2f}, n={len(vals)}"
            )
        ax2.set_yticks(range(len(rows)))
        ax2.set_yticklabels(labels, fontsize=8)
        top = max(r[2][-1] for r in rows)
        ax2.set_xlim(min(-1.5, min(r[2][0] for r in rows) * 1.5), max(2.0, top * 1.6))
        ax2.set_ylim(-0.6, len(rows) - 0.3)
        ax2.invert_yaxis()
    else:
        for kind, impl, vals in rows:
            ys = [(k + 1) / len(vals) for k in range(len(vals))]
            ax2.step(
                vals,
                ys,
                where="post",
                color=_colour(impl),
                linestyle=KIND_STYLE.get(kind, "-"),
                label=f"{impl} {kind} (bound {bounds.get(kind, float('nan')):.1f} ms,"
                f" n={len(vals)})",
            )
        ax2.set_ylabel("fraction")
        ax2.set_ylim(0, 1.02)
        ax2.legend(fontsize=8)
    if rows:
        # Linear within a millisecond of the bound, logarithmic beyond: sub-ms differences
        # stay readable next to an outlier of a hundred ms.
        ax2.set_xscale("symlog", linthresh=1.0)
    ax2.axvline(0, color="grey", linewidth=1)
    ax2.annotate(
        "bound",
        (0, 0.0),
        xycoords=("data", "axes fraction"),
        rotation=90,
        va="bottom",
        ha="right",
        fontsize=8,
        color="grey",
    )
    ax2.set_xlabel("failover time minus its kind's bound (ms; linear within ±1, log beyond)")
    ax2.grid(alpha=0.3)
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_tail(
    path: str | Path,
    title: str,
    hist: Mapping[str, Sequence[float]],
    hist_xlabel: str,
    tail: Mapping[str, Sequence[float]],
    tail_xlabel: str,
    hist_lines: Mapping[str, float] | None = None,
    tail_lines: Mapping[str, float] | None = None,
) -> Path:
    """A histogram (left) and the tail (right): the fraction of samples above x, on a
    log axis, so p99, p99.9 and the worst few stand apart instead of hugging 1.0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5), constrained_layout=True)
    fig.suptitle(title)
    _hist_panel(ax1, hist, hist_xlabel, hist_lines)
    styles = ["-", "--", ":", "-."]
    lowest = 1.0
    drew = False
    for i, (label, series) in enumerate(tail.items()):
        vals = sorted(v for v in series if v is not None and not math.isnan(v))
        if not vals:
            continue
        n = len(vals)
        ys = [(n - k) / n for k in range(n)]  # fraction >= each sample
        lowest = min(lowest, 1 / n)
        ax2.step(
            vals,
            ys,
            where="post",
            label=f"{label} (n={n}, max {vals[-1]:.3g})",
            color=_colour(label),
            linestyle=styles[i % len(styles)],
        )
        drew = True
    if not drew:
        ax2.text(0.5, 0.5, "no samples", ha="center", transform=ax2.transAxes)
    else:
        ax2.set_yscale("log")
        ax2.set_ylim(lowest / 2, 1.05)
        for q in (0.1, 0.01, 0.001):
            if q >= lowest:
                ax2.axhline(q, color="grey", linewidth=0.6, linestyle=":")
                ax2.annotate(
                    f"p{100 * (1 - q):g}",
                    (0.01, q),
                    xycoords=("axes fraction", "data"),
                    fontsize=7,
                    color="grey",
                    va="bottom",
                )
        ax2.legend(fontsize=8)
    _mark_lines(ax2, tail_lines, 0.02, "bottom")
    ax2.set_xlabel(tail_xlabel)
    ax2.set_ylabel("fraction of samples above x (log)")
    ax2.grid(alpha=0.3, which="both")
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _mark_lines(ax: Any, lines: Mapping[str, float] | None, y: float, va: str) -> None:
    """A dashed grey vertical line at each x, its label written along it at height y
    (a fraction of the axes)."""
    for label, x in (lines or {}).items():
        ax.axvline(x, linestyle="--", color="grey", linewidth=1)
        ax.annotate(
            label,
            (x, y),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va=va,
            ha="right",
            fontsize=8,
            color="grey",
        )


def _colour(label: str) -> str | None:
    return next((c for k, c in PEER_COLOUR.items() if label.startswith(k)), None)


def need_root(why: str = "network namespaces, raw sockets") -> None:
    """A click error unless running as root, saying what root is needed for."""
    if os.geteuid() != 0:
        raise click.ClickException(f"needs root ({why})")


def bench_options(
    plot_help: str, peer_help: str = "Run keepalived side by side (default: when installed)."
) -> Callable[[F], F]:
    """The options every lab bench shares: --peer, --json and --plot."""

    def decorate(fn: F) -> F:
        fn = click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help=plot_help)(
            fn
        )
        fn = click.option(
            "--json", "as_json", is_flag=True, help="Print the figures as JSON (orjson)."
        )(fn)
        return click.option(
            "--peer", type=click.Choice(["keepalived", "none"]), default=None, help=peer_help
        )(fn)

    return decorate


def new_doc(
    bench: str, cfg: dict[str, Any], impls: list[str], results: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """The head of every bench's JSON document; `ratios` is filled by the bench."""
    from fastha.bench.failover import machine

    return {
        "bench": bench,
        "config": cfg,
        **extra,
        "impls": impls,
        "results": results,
        "ratios": {},
        "machine": machine(),
    }


def impl_rows(
    doc: dict[str, Any],
    row: Callable[[dict[str, Any]], list[str]],
    ratio_row: Callable[[dict[str, Any]], list[str]],
) -> list[list[str]]:
    """A table's rows: each implementation's name and ``row(its result)``, then, when
    the doc compares two, "ratio first/second" and ``ratio_row(doc["ratios"])``."""
    rows = [[impl, *row(doc["results"][impl])] for impl in doc["impls"]]
    if doc["ratios"]:
        rt = doc["ratios"]
        rows.append([f"ratio {rt['of']}", *ratio_row(rt)])
    return rows


def advert_doc(bench: str, cfg: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """The head of an advert bench's document (jitter, scale): one result per
    implementation and ``bound_ms``, the gap a priority-100 backup tolerates."""
    bound_ms = measure.backup_bound_ms(cfg["advert_int_ms"] / 1000)
    return new_doc(bench, cfg, list(results), results, bound_ms=bound_ms)


def compared(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The results of the two implementations a doc compares (first, second), with
    ``doc["ratios"]["of"]`` set to "first/second"; None when the doc holds one."""
    impls = doc["impls"]
    if len(impls) != 2:
        return None
    doc["ratios"] = {"of": f"{impls[0]}/{impls[1]}"}
    return doc["results"][impls[0]], doc["results"][impls[1]]


def emit(
    doc: dict[str, Any],
    as_json: bool,
    plot_path: str | None,
    plot: Callable[[dict[str, Any], str], Any],
    tables: Callable[[dict[str, Any]], list[Any]],
) -> None:
    """A bench's end: the PNG when asked for (its path noted in the doc), then the doc
    as JSON or as tables on stdout."""
    if plot_path:
        plot(doc, plot_path)
        doc["plot"] = str(plot_path)
    if as_json:
        click.echo(dumps(doc))
    else:
        print_tables(*tables(doc))
