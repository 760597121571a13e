"""The TTA report as files: report.json, a heatmap per method (shift x severity, fall rate
relative to `none`), a degradation curve, and the text table `wildrobot-client report` prints.

The text table is wildrobot.tta_table (plain Python: the client prints it without JAX).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .paired import excludes_zero

REPORT_JSON = "report.json"


def write_report(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """Writes the report's files into out_dir (each via a temporary name); returns them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [_atomic_text(out_dir / REPORT_JSON, json.dumps(report, indent=1))]
    for method in report["methods"]:
        if method != "none":
            written.append(heatmap(report, method, out_dir / f"heatmap_{method}.png"))
    written.append(degradation(report, out_dir / "degradation.png"))
    return written


def _atomic_text(path: Path, text: str) -> Path:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)
    return path


def _grid(report: dict[str, Any], method: str, metric: str = "fall_rate") -> list[list[float]]:
    settings = report["settings"]
    cells = report["methods"][method]["cells"]
    return [
        [cells[f"{shift}/{level}"][metric] for level in settings["severities"]]
        for shift in settings["shifts"]
    ]


def heatmap(report: dict[str, Any], method: str, path: Path) -> Path:
    """Fall rate of `method` minus that of `none`, per shift x severity (green: fewer falls),
    with `*` where the paired 95% bootstrap interval of the difference excludes 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = report["settings"]
    base, other = _grid(report, "none"), _grid(report, method)
    delta = [
        [o - b for o, b in zip(row_o, row_b, strict=True)]
        for row_o, row_b in zip(other, base, strict=True)
    ]
    # At least as wide as the two-line title (it was cut off on narrow grids).
    width = max(4.8, 1.2 + 0.9 * len(settings["severities"]))
    fig, ax = plt.subplots(figsize=(width, 1.2 + 0.5 * len(delta)))
    image = ax.imshow(delta, cmap="RdYlGn_r", vmin=-1.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(settings["severities"])), [str(s) for s in settings["severities"]])
    ax.set_yticks(range(len(settings["shifts"])), settings["shifts"])
    ax.set_xlabel("severity")
    cells = report["methods"][method]["cells"]
    for i, row in enumerate(delta):
        for j, value in enumerate(row):
            cell = cells[f"{settings['shifts'][i]}/{settings['severities'][j]}"]
            paired = cell.get("paired_vs_none")
            mark = "*" if paired and excludes_zero(paired["fall_rate_diff_ci95"]) else ""
            ax.text(
                j,
                i,
                f"{value:+.2f}{mark}\n({other[i][j]:.2f})",
                ha="center",
                va="center",
                fontsize=7,
            )
    ax.set_title(
        f"{method}: fall rate minus none's (its own in brackets)\n"
        "*: paired 95% bootstrap interval excludes 0",
        fontsize=9,
    )
    fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    partial = path.with_name(f".{path.name}.partial.png")
    fig.savefig(partial, dpi=110)
    plt.close(fig)
    os.replace(partial, path)
    return path


def degradation(report: dict[str, Any], path: Path) -> Path:
    """Fall rate averaged over the shifts, per severity (0: clean), one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = report["settings"]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for method, result in report["methods"].items():
        grid = _grid(report, method)
        means = [sum(col) / len(col) for col in zip(*grid, strict=True)]
        xs = [0, *settings["severities"]]
        ax.plot(xs, [result["cells"]["clean"]["fall_rate"], *means], marker="o", label=method)
    ax.set_xlabel("severity (0: clean)")
    ax.set_ylabel("fall rate, mean over shifts")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    partial = path.with_name(f".{path.name}.partial.png")
    fig.savefig(partial, dpi=110)
    plt.close(fig)
    os.replace(partial, path)
    return path
