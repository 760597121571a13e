"""The text table of a TTA report (report.json of a tta_eval job); plain Python, no JAX."""

from __future__ import annotations

from typing import Any


def table(report: dict[str, Any]) -> str:
    """Fall rate [95% CI] per cell and method, then each method's cost per control step."""
    settings = report["settings"]
    methods = [m for m in settings["methods"] if m in report["methods"]]
    first = report["methods"][methods[0]]["cells"]
    order = ["clean"] + [f"{s}/{v}" for s in settings["shifts"] for v in settings["severities"]]
    order += [cell for cell in first if cell not in order]  # clean_after (continual)
    width = max(len(name) for name in order) + 2
    lines = [f"{'cell':<{width}}" + "".join(f"{m:>24}" for m in methods)]
    for cell in order:
        row = f"{cell:<{width}}"
        for method in methods:
            c = report["methods"][method]["cells"][cell]
            low, high = c["fall_rate_ci95"]
            row += f"{c['fall_rate']:>8.2f} [{low:.2f}, {high:.2f}]".rjust(24)
        lines.append(row)
    lines.append("")
    lines.append(
        "fall rate [95% Wilson interval] over "
        f"{first['clean']['episodes']} episodes per cell; cost per control step:"
    )
    for method in methods:
        cost = report["methods"][method]["cost_per_control_step"]
        lines.append(f"  {method:<10} " + ", ".join(f"{k} {v:g}" for k, v in cost.items()))
    return "\n".join(lines)
