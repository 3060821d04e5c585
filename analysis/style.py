"""One look for every figure: seaborn's paper context, a fixed colour per method (the same in every
figure), and PNG plus PDF output."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from .outputs import FIGURE_FORMATS  # noqa: E402

HIGHLIGHT = "braincl"   # drawn first, in the first palette colour, on top of the others
PANEL_SIZE = (3.4, 2.6)  # inches per subplot


def apply() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.0,
                  rc={"figure.dpi": 110, "savefig.dpi": 200, "savefig.bbox": "tight", "axes.titlesize": 9,
                      "legend.fontsize": 7, "legend.frameon": False, "lines.linewidth": 1.4, "pdf.fonttype": 42})


# Every method keeps its colour in every figure, whichever methods a figure shows.
KNOWN_METHODS = ("braincl", "er", "icarl", "derpp", "lwf", "ewc", "bic", "wa", "jpeg_replay", "gen_replay", "finetune",
                 "joint")


def method_order(methods) -> list[str]:
    methods = sorted(set(methods))
    return ([HIGHLIGHT] if HIGHLIGHT in methods else []) + [m for m in methods if m != HIGHLIGHT]


def palette(methods) -> dict[str, tuple]:
    colours = sns.color_palette("colorblind", 10) + sns.color_palette("dark", 10)
    extra = sorted(set(methods) - set(KNOWN_METHODS))
    return {m: colours[i % len(colours)] for i, m in enumerate((*KNOWN_METHODS, *extra)) if m in set(methods)}


def subplots(n: int, ncols: int | None = None, size: tuple = PANEL_SIZE, **kw):
    ncols = ncols or min(n, 3)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False,
                             layout="constrained", **kw)  # constrained: long axis labels never overlap
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def placeholder(note: str):
    """A figure that says why it is empty, so that declared outputs always exist."""
    fig, ax = plt.subplots(figsize=PANEL_SIZE)
    ax.axis("off")
    ax.text(0.5, 0.5, note, ha="center", va="center", wrap=True, fontsize=8)
    return fig


# No dates and no library versions in the files: the same records give the same bytes.
METADATA = {"png": {"Software": None}, "pdf": {"CreationDate": None, "ModDate": None, "Producer": None,
                                                "Creator": None}}


def save(fig, out_dir: str | Path, name: str) -> list[Path]:
    """Write PNG and PDF atomically (a temporary file renamed into place)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.{ext}" for ext in FIGURE_FORMATS]
    for p in paths:
        ext = p.suffix[1:]
        tmp = p.with_name(f".{p.name}.tmp")
        fig.savefig(tmp, format=ext, metadata=METADATA.get(ext))
        tmp.replace(p)
    plt.close(fig)
    return paths
