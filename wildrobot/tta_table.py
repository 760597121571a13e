"""The text table of a TTA report (report.json of a tta_eval job); plain Python, no JAX."""

from __future__ import annotations

from typing import Any


def table(report: dict[str, Any]) -> str:
    """Fall rate [95% CI] per cell and method, each method's cost per control step, then each
    method against `none` pair by pair (`paired_table`)."""
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
    paired = paired_table(report)
    return "\n".join(lines) + ("\n\n" + paired if paired else "")


def paired_table(report: dict[str, Any]) -> str:
    """Per method other than `none` and cell: fall-rate difference (method minus none) with its
    paired 95% bootstrap interval, McNemar's exact p on the falls (discordant pairs: only none
    fell / only the method fell), return difference with its interval, and counters (tent's
    resets). `*`: the interval excludes 0. Empty for a report without paired figures."""
    settings = report["settings"]
    order = ["clean"] + [f"{s}/{v}" for s in settings["shifts"] for v in settings["severities"]]
    lines: list[str] = []
    for method in settings["methods"]:
        result = report["methods"].get(method)
        if method == "none" or result is None:
            continue
        cells = result["cells"]
        keys = order + [cell for cell in cells if cell not in order]
        if not any("paired_vs_none" in cells.get(k, {}) for k in keys):
            continue
        inputs = result.get("inputs")
        lines.append(f"{method} - none" + (f" (inputs: {', '.join(inputs)})" if inputs else ""))
        lines.append(
            f"  {'cell':<12}{'falls diff [95% CI]':>26}{'b/c':>8}{'McNemar p':>11}"
            f"{'return diff [95% CI]':>32}"
        )
        for cell in keys:
            c = cells.get(cell, {})
            p = c.get("paired_vs_none")
            if p is None:
                continue
            fl, fh = p["fall_rate_diff_ci95"]
            rl, rh = p["return_diff_ci95"]
            falls = f"{p['fall_rate_diff']:+.2f} [{fl:+.2f}, {fh:+.2f}]{_star(fl, fh)}"
            ret = f"{p['return_diff']:+.1f} [{rl:+.1f}, {rh:+.1f}]{_star(rl, rh)}"
            discordant = f"{p['only_none_fell']}/{p['only_method_fell']}"
            extra = "".join(
                f"  {k.split('/', 1)[1]} {v}"
                for k, v in sorted(c.items())
                if k.startswith("count/") and not k.endswith("_per_episode")
            )
            lines.append(
                f"  {cell:<12}{falls:>26}{discordant:>8}{p['mcnemar_p']:>11.3f}{ret:>32}{extra}"
            )
        lines.append("")
    if lines:
        first = report["methods"][settings["methods"][0]]["cells"]["clean"]
        lines.append(
            f"paired over the same {first['episodes']} episodes per cell "
            f"({len(settings['seeds'])} seed(s)); b/c: episodes where only none / only the "
            "method fell; *: the 95% paired bootstrap interval excludes 0"
        )
    return "\n".join(lines)


def _star(low: float, high: float) -> str:
    return "*" if low > 0 or high < 0 else " "
