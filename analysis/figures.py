"""Paper-style figures from the loaded run records (and the codec benchmark CSV). Each builder
returns ``(figure, note)``: a figure without data is a placeholder that says why, and ``note``
carries that reason for the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import style
from .load import Results, main_keys
from .outputs import UPPER_BOUNDS
from .render import budget_label

ATTENTION_METHODS = 3        # braincl and two baselines
ATTENTION_MAX_TASKS = 6      # columns of maps; tasks are sampled evenly beyond this


def _cil(df: pd.DataFrame, res: Results) -> pd.DataFrame:
    """Rows of the plain class-incremental runs (see ``load.MAIN_PROTOCOL``)."""
    keep = main_keys(res)
    return df.merge(keep, on=list(keep.columns), how="inner")


def _panels(df: pd.DataFrame) -> list[tuple]:
    keys = df[["dataset", "budget_bytes"]].drop_duplicates()
    keys = keys.assign(_b=keys["budget_bytes"].astype("Float64").fillna(np.inf)).sort_values(["dataset", "_b"])
    return list(keys[["dataset", "budget_bytes"]].itertuples(index=False, name=None))


def _in_panel(df: pd.DataFrame, dataset, budget) -> pd.DataFrame:
    same_budget = df["budget_bytes"].isna() if pd.isna(budget) else (df["budget_bytes"] == budget).fillna(False)
    return df[(df["dataset"] == dataset) & same_budget]


def _legend(fig, axes) -> None:
    handles, labels = {}, []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
        if ax.get_legend():
            ax.get_legend().remove()
    if handles:
        order = style.method_order(handles)
        fig.legend([handles[m] for m in order], order, loc="lower center", ncol=min(len(handles), 6),
                   bbox_to_anchor=(0.5, 1.0))


def accuracy_curves(res: Results, weighting: str = "sample"):
    df = _cil(res.curves, res)
    if df.empty:
        return style.placeholder("no class-incremental runs"), "no class-incremental runs"
    col = f"acc_{weighting}"
    pal = style.palette(df["method"])
    panels = _panels(df)
    fig, axes = style.subplots(len(panels))
    for ax, (dataset, budget) in zip(axes, panels):
        sub = _in_panel(df, dataset, budget)
        for method in style.method_order(sub["method"]):
            g = sub[sub["method"] == method].groupby("step")[col].agg(["mean", "std", "count"])
            mean, std = g["mean"] * 100, g["std"].fillna(0) * 100
            ax.plot(g.index, mean, marker="o", ms=3, color=pal[method], label=method)
            ax.fill_between(g.index, mean - std, mean + std, color=pal[method], alpha=0.2, lw=0)
        ax.set(title=f"{dataset}, {budget_label(budget)}", xlabel="tasks learned",
               ylabel=f"accuracy on seen classes (%, {weighting}-weighted)", ylim=(0, 100))
        ax.xaxis.get_major_locator().set_params(integer=True)
    _legend(fig, axes)
    return fig, None


def accuracy_vs_budget(res: Results, weighting: str = "sample"):
    df = _cil(res.runs, res)
    df = df[df["budget_bytes"].notna()]
    if df.empty:
        return style.placeholder("no class-incremental runs with a memory budget"), "no runs with a budget"
    col = f"avg_acc_{weighting}"
    pal = style.palette(df["method"])
    datasets = sorted(df["dataset"].unique())
    fig, axes = style.subplots(len(datasets))
    for ax, dataset in zip(axes, datasets):
        sub = df[df["dataset"] == dataset]
        for method in style.method_order(sub["method"]):
            g = sub[sub["method"] == method].groupby("budget_bytes")[col].agg(["mean", "std"]).sort_index()
            ax.errorbar(g.index.astype(float), g["mean"] * 100, yerr=g["std"].fillna(0) * 100, marker="o", ms=3,
                        capsize=2, color=pal[method], label=method)
        ax.set_xscale("log")
        ax.set(title=dataset, xlabel="memory budget (bytes, log scale)",
               ylabel=f"average accuracy (%, {weighting}-weighted)", ylim=(0, 100))
    _legend(fig, axes)
    return fig, None


def feature_spectra(res: Results):
    df = _cil(res.spectra, res)
    if df.empty:
        return style.placeholder("no run recorded analysis.feature_spectrum"), "no feature spectra"
    pal = style.palette(df["method"])
    panels = _panels(df)
    fig, axes = style.subplots(len(panels))
    for ax, (dataset, budget) in zip(axes, panels):
        sub = _in_panel(df, dataset, budget)
        for method in style.method_order(sub["method"]):
            g = sub[sub["method"] == method].groupby("index")["eigenvalue"].mean()
            g = g[g > 0]  # exact zeros (rank deficiency) have no place on a log axis
            ax.plot(g.index, g.values, color=pal[method], label=method)
        ax.set_yscale("log")
        ax.set(title=f"{dataset}, {budget_label(budget)}", xlabel="eigenvalue index (descending)",
               ylabel="normalised eigenvalue (fraction of variance)")
        ax.xaxis.get_major_locator().set_params(integer=True)
    _legend(fig, axes)
    return fig, None


def classwise_accuracy(res: Results):
    import seaborn as sns

    df = _cil(res.per_class, res)
    if df.empty:
        return style.placeholder("no run recorded accuracy.per_class"), "no per-class accuracy"
    last = df[df["after_task"] == df.groupby(["dataset", "method", "budget_bytes", "seed"], dropna=False)["after_task"]
              .transform("max")].assign(percent=lambda d: d["accuracy"] * 100)
    pal = style.palette(last["method"])
    panels = _panels(last)
    fig, axes = style.subplots(len(panels))
    for ax, (dataset, budget) in zip(axes, panels):
        sub = _in_panel(last, dataset, budget)
        order = style.method_order(sub["method"])
        sns.boxplot(data=sub, x="method", y="percent", order=order, hue="method", palette=pal, ax=ax,
                    fliersize=0, width=0.6, legend=False)
        sns.stripplot(data=sub, x="method", y="percent", order=order, color="0.2", size=2, jitter=0.2, ax=ax)
        ax.set(title=f"{dataset}, {budget_label(budget)}", xlabel="method",
               ylabel="per-class accuracy after last task (%)", ylim=(-2, 102))
        ax.tick_params(axis="x", rotation=30)
    return fig, None


def _attention_selection(att: pd.DataFrame):
    """The (dataset, budget, seed) with the most methods recorded, and up to three methods:
    braincl first, then baselines in alphabetical order (upper bounds only to fill up)."""
    counts = att.groupby(["dataset", "budget_bytes", "seed"], dropna=False)["method"].nunique()
    dataset, budget, seed = counts.sort_values(ascending=False, kind="stable").index[0]
    sub = att[(att["dataset"] == dataset) & (att["seed"] == seed)]
    sub = _in_panel(sub, dataset, budget)
    ranked = style.method_order(sub["method"])
    ranked = [m for m in ranked if m not in UPPER_BOUNDS] + [m for m in ranked if m in UPPER_BOUNDS]  # baselines first
    methods = ranked[:ATTENTION_METHODS]
    return sub[sub["method"].isin(methods)], methods, (dataset, budget, seed)


def attention_drift(res: Results):
    """Top: Grad-CAM map of the first fixed task-0 test image after each task, one row per method.
    Bottom: drift, the mean absolute change of the maps from those after task 1 (all images)."""
    import matplotlib.pyplot as plt

    att = _cil(res.attention, res)
    if att.empty:
        return style.placeholder("no run recorded analysis.attention (eval.attention.enabled: true)"), "no attention maps"
    sub, methods, (dataset, budget, seed) = _attention_selection(att)
    tasks = sorted(sub["after_task"].unique())
    shown = [tasks[int(i)] for i in np.unique(np.linspace(0, len(tasks) - 1, min(len(tasks), ATTENTION_MAX_TASKS)).round())]
    pal = style.palette(methods)
    fig = plt.figure(figsize=(1.3 * len(shown) + 1.0, 1.3 * len(methods) + 2.4))
    gs = fig.add_gridspec(len(methods) + 1, len(shown) + 1, height_ratios=[1] * len(methods) + [1.6],
                          width_ratios=[1] * len(shown) + [0.08], hspace=0.35, wspace=0.08)
    image = sorted(sub["image"].unique())[0]
    im = None
    for r, method in enumerate(methods):
        for c, t in enumerate(shown):
            ax = fig.add_subplot(gs[r, c])
            cell = sub[(sub["method"] == method) & (sub["after_task"] == t) & (sub["image"] == image)]
            if not cell.empty:
                im = ax.imshow(cell["map"].iloc[0], cmap="inferno", vmin=0, vmax=1, interpolation="bilinear")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"after task {t}", fontsize=7)
            if c == 0:
                ax.set_ylabel(method, fontsize=7)
    if im is not None:
        fig.colorbar(im, cax=fig.add_subplot(gs[: len(methods), -1]), label="Grad-CAM (0-1)")
    ax = fig.add_subplot(gs[-1, :-1])
    for method in methods:
        m = sub[sub["method"] == method]
        first = {i: v for i, v in m[m["after_task"] == m["after_task"].min()][["image", "map"]].itertuples(index=False)}
        drift = m.assign(drift=[float(np.abs(v - first[i]).mean()) if i in first and v.shape == first[i].shape else np.nan
                                for i, v in m[["image", "map"]].itertuples(index=False)])
        g = drift.groupby("after_task")["drift"].mean()
        ax.plot(g.index, g.values, marker="o", ms=3, color=pal[method], label=method)
    ax.set(xlabel="tasks learned", ylabel="drift: mean |map − map after task 1| (0-1)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend()
    fig.suptitle(f"Attention drift on fixed task-1 test images: {dataset}, {budget_label(budget)}, seed {seed}",
                 fontsize=8)
    return fig, None


RD_LABELS = ("method", "codec", "label", "model")


def rate_distortion(benchmarks: str | Path | None):
    path = Path(benchmarks or ".") / "rate_distortion.csv"
    if not path.is_file():
        note = f"{path} not found (written by the codec benchmark)"
        return style.placeholder(note), note
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        note = f"{path} is not a readable CSV: {err}"
        return style.placeholder(note), note
    label = next((c for c in RD_LABELS if c in df.columns), None)
    missing = [c for c in ("bytes_per_sample", "psnr_db") if c not in df.columns] + ([] if label else ["method or codec"])
    if missing:
        note = f"{path} lacks column(s) {', '.join(missing)}"
        return style.placeholder(note), note
    df = df.assign(bytes_per_sample=pd.to_numeric(df["bytes_per_sample"], errors="coerce"),
                   psnr_db=pd.to_numeric(df["psnr_db"], errors="coerce")).dropna(subset=["bytes_per_sample", "psnr_db"])
    if df.empty:
        note = f"{path} has no numeric rows"
        return style.placeholder(note), note
    pal = style.palette(df[label].astype(str))
    fig, (ax,) = style.subplots(1)
    for name in style.method_order(df[label].astype(str)):
        g = df[df[label].astype(str) == name].groupby("bytes_per_sample")["psnr_db"].mean().sort_index()
        ax.plot(g.index, g.values, marker="o", ms=3, color=pal[name], label=name)
    ax.set_xscale("log")
    ax.set(xlabel="stored bytes per sample (log scale)", ylabel="reconstruction PSNR (dB)", title="Rate-distortion")
    ax.legend()
    return fig, None


def builders(res: Results, benchmarks=None, weighting: str = "sample") -> dict:
    """name -> zero-argument function returning (figure, note); names match ``outputs.FIGURES``.
    Built one at a time so that only one figure is open at once."""
    return {
        "accuracy_curves": lambda: accuracy_curves(res, weighting),
        "accuracy_vs_budget": lambda: accuracy_vs_budget(res, weighting),
        "feature_spectra": lambda: feature_spectra(res),
        "classwise_accuracy": lambda: classwise_accuracy(res),
        "attention_drift": lambda: attention_drift(res),
        "rate_distortion": lambda: rate_distortion(benchmarks),
    }
