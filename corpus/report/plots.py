"""The report's charts: matplotlib (Agg, no display) figures returned as base64 PNG strings, so the
HTML file carries them inline and needs nothing else to show."""

from __future__ import annotations

import base64
import io
from collections import Counter

import numpy as np

KEPT, DROPPED = "#3b7dd8", "#d8583b"


def pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("`refinery report` needs matplotlib: pip install matplotlib") from exc
    matplotlib.use("Agg")  # no display; must precede pyplot's import
    import matplotlib.pyplot as plt

    return plt


def _integer_axis(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def png(fig) -> str:
    """The figure as base64 PNG (for corpus.report.page.img); closes it."""
    buf = io.BytesIO()
    # No Software stamp: the same run gives the same bytes whatever matplotlib made them.
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight", metadata={"Software": None})
    pyplot().close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def funnel(stages: list[str], series: dict[str, list[int]], title: str) -> str:
    """Documents left after each stage, one line of bars per source."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(stages) + 2), 3.2))
    width = 0.8 / max(1, len(series))
    x = np.arange(len(stages))
    for i, (source, values) in enumerate(series.items()):
        ax.bar(x + i * width - 0.4 + width / 2, values, width, label=source)
    ax.set_xticks(x, stages, rotation=20, ha="right")
    ax.set_ylabel("documents")
    _integer_axis(ax.yaxis)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return png(fig)


def hbars(labels: list[str], kept: list[float], dropped: list[float], xlabel: str, title: str,
          kept_label: str = "kept", dropped_label: str = "dropped") -> str:
    """Horizontal stacked bars (kept | dropped) per label, top label first."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, max(1.6, 0.32 * len(labels) + 1)))
    y = np.arange(len(labels))[::-1]
    ax.barh(y, kept, color=KEPT, label=kept_label)
    ax.barh(y, dropped, left=kept, color=DROPPED, label=dropped_label)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel(xlabel)
    _integer_axis(ax.xaxis)
    ax.set_title(title)
    if any(dropped) and any(kept):
        ax.legend(fontsize=8)
    return png(fig)


def histogram(kept: np.ndarray, dropped: np.ndarray, xlabel: str, title: str, log_x: bool = False,
              lines: list[tuple[str, float]] = (), dashed: list[tuple[str, float]] = ()) -> str:
    """Stacked histogram of kept and dropped values, with labelled vertical lines (cut-offs)."""
    plt = pyplot()
    both = np.concatenate([kept, dropped])
    fig, ax = plt.subplots(figsize=(7, 3.2))
    if log_x:
        lo, hi = max(both.min(), 1e-9), max(both.max(), 1e-9)
        bins = np.logspace(np.log10(lo), np.log10(hi) + 1e-9, 40)
        ax.set_xscale("log")
    else:
        bins = np.linspace(both.min(), both.max() + 1e-12, 40)
    ax.hist([kept, dropped], bins=bins, stacked=True, color=[KEPT, DROPPED], label=["kept", "dropped"])
    for style, marks in (("-", lines), ("--", dashed)):
        for label, value in marks:
            ax.axvline(value, color="black", linestyle=style, linewidth=1)
            ax.annotate(label, (value, 1), xycoords=("data", "axes fraction"), rotation=90, fontsize=7,
                        va="top", ha="right")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("documents")
    _integer_axis(ax.yaxis)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return png(fig)


def cluster_sizes(sizes: Counter, title: str) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3))
    xs = sorted(sizes)
    ax.bar(range(len(xs)), [sizes[x] for x in xs], color=KEPT, width=0.6)
    ax.set_xticks(range(len(xs)), [str(x) for x in xs])
    ax.set_xlabel("documents in the cluster")
    ax.set_ylabel("clusters")
    _integer_axis(ax.yaxis)
    ax.set_title(title)
    return png(fig)


def throughput(phases: list[str], docs_per_s: list[float], mb_per_s: list[float]) -> str:
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, max(1.8, 0.4 * len(phases) + 1)))
    y = np.arange(len(phases))[::-1]
    a.barh(y, docs_per_s, color=KEPT)
    a.set_yticks(y, phases, fontsize=8)
    a.set_xlabel("documents / s (wall)")
    b.barh(y, mb_per_s, color=KEPT)
    b.set_yticks(y, [""] * len(phases))
    b.set_xlabel("MB of text / s (wall)")
    return png(fig)


def lines(series: dict[str, tuple[list, list]], ylabel: str, title: str, marker: str | None = None,
          xlabel: str = "step") -> str:
    """One line per series {label: (xs, ys)}; a legend when there is more than one."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.4))
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, label=label, marker=marker, markersize=3, linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return png(fig)
