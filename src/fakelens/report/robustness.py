"""The robustness plot: AUC, accuracy (and AP@IoU 0.5 and AR@10 of a localization run) of a run against
each perturbation's severity (fakelens.inference.robustness gives the rows; this module only draws)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fakelens.report.plots import _png

CLEAN = "none"


def robustness_png(rows: Sequence[Any], title: str = "") -> bytes:
    """One panel per perturbation: AUC (solid) and accuracy (dashed) against severity (and AP@IoU
    0.5 and AR@10 for a localization run, the clean AP@0.5 as a dotted green line), the clean
    videos' AUC as a grey line. PNG bytes."""
    from matplotlib.figure import Figure

    clean = next((r for r in rows if r.perturbation == CLEAN), None)
    names = list(dict.fromkeys(r.perturbation for r in rows if r.perturbation != CLEAN))
    cols = min(4, max(1, len(names)))
    nrows = max(1, int(np.ceil(len(names) / cols)))
    fig = Figure(figsize=(3.2 * cols, 2.6 * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, cols, squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, names):
        mine = [r for r in rows if r.perturbation == name]
        x = np.arange(len(mine))
        ax.plot(x, [r.auc for r in mine], "o-", color="tab:blue", label="AUC")
        ax.plot(x, [r.accuracy for r in mine], "s--", color="tab:orange", label="accuracy")
        if any(np.isfinite(r.ap_iou50) for r in mine):  # a localization run: its proposals' AP@0.5 and AR@10
            ax.plot(x, [r.ap_iou50 for r in mine], "^-", color="tab:green", label="AP@IoU 0.5")
            ax.plot(x, [r.ar10 for r in mine], "v-.", color="tab:red", label="AR@10")
            if clean is not None and np.isfinite(clean.ap_iou50):
                ax.axhline(clean.ap_iou50, color="tab:green", lw=1, ls=":", label="AP@IoU 0.5, clean")
        if clean is not None and np.isfinite(clean.auc):
            ax.axhline(clean.auc, color="grey", lw=1, ls=":", label="AUC, clean")
        ax.set_xticks(x, [f"{r.severity:g}" for r in mine])
        ax.set_xlabel(f"{name} ({mine[0].unit})", fontsize=8)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    if names:
        axes.flat[0].legend(fontsize=7, loc="lower left")
    if title:
        fig.suptitle(title, fontsize=9)
    return _png(fig)
