"""The two pictures of the mixture commands: DoReMi's weight trajectory and the mixture comparison."""

from __future__ import annotations

from typing import Any


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a cluster node
    import matplotlib.pyplot as plt

    return plt


def plot_trajectory(trajectory: list[dict[str, Any]], path: str) -> None:
    """alpha_t (thin) and its running average (thick) per domain against the step, rounds side by side."""
    plt = _pyplot()
    rounds = sorted({t["round"] for t in trajectory})
    fig, axes = plt.subplots(1, len(rounds), figsize=(6 * len(rounds), 4), squeeze=False, sharey=True)
    for ax, r in zip(axes[0], rounds):
        rows = [t for t in trajectory if t["round"] == r]
        steps = [t["step"] for t in rows]
        for i, d in enumerate(sorted(rows[0]["alpha"])):
            color = f"C{i}"
            ax.plot(steps, [t["alpha"][d] for t in rows], color=color, alpha=0.35, linewidth=0.8)
            ax.plot(steps, [t["average_alpha"][d] for t in rows], color=color, linewidth=2, label=d)
        ax.set_title(f"round {r}")
        ax.set_xlabel("proxy step")
        ax.set_yscale("log")
    axes[0][0].set_ylabel("domain weight (thin: alpha_t, thick: running average)")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_compare(report: dict[str, Any], path: str) -> None:
    """Held-out perplexity per domain (mean over seeds, min-max bars) for each mixture."""
    plt = _pyplot()
    mixtures = list(report["mixtures"])
    domains = report["domains"]
    width = 0.8 / len(mixtures)
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * (len(domains) + 2)), 4))
    labels = domains + ["average", "worst"]
    for j, m in enumerate(mixtures):
        row = report["mixtures"][m]
        means = [row["domains"][d]["mean"] for d in domains] + [row["average"]["mean"], row["worst"]["mean"]]
        lows = [row["domains"][d]["min"] for d in domains] + [row["average"]["min"], row["worst"]["min"]]
        highs = [row["domains"][d]["max"] for d in domains] + [row["average"]["max"], row["worst"]["max"]]
        xs = [i + (j - (len(mixtures) - 1) / 2) * width for i in range(len(labels))]
        ax.bar(xs, means, width, label=m, yerr=[[a - b for a, b in zip(means, lows)],
                                                [b - a for a, b in zip(means, highs)]], capsize=2)
    ax.set_xticks(range(len(labels)), labels, rotation=20)
    ax.set_ylabel(f"held-out perplexity ({report['seeds']} seeds)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
