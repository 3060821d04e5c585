"""Paper-style figures from the loaded run records (and the codec benchmark CSV). Each builder
returns ``(figure, note)``: a figure without data is a placeholder that says why, and ``note``
carries that reason for the command line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from . import style
from .load import Results, main_keys
from .outputs import UPPER_BOUNDS
from .render import budget_label

WIDE_PANEL = (6.8, 3.2)       # inches: one wide panel with the legend beside it
SPECTRUM_FLOOR = 1e-7         # normalised eigenvalues below this are float noise
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


def _dataset_panels(df: pd.DataFrame):
    """One wide panel per data set (in ``df.groupby("dataset")`` order) and the method colours."""
    fig, axes = style.subplots(df["dataset"].nunique(), ncols=1, size=WIDE_PANEL)
    return fig, axes, style.palette(df["method"])


def _method_panels(df: pd.DataFrame):
    """A figure with one panel per data set and budget, each titled. Returns the figure, its axes and
    an iterator over (axis, method, that method's rows in the panel, its colour)."""
    pal = style.palette(df["method"])
    panels = _panels(df)
    fig, axes = style.subplots(len(panels))

    def items():
        for ax, (dataset, budget) in zip(axes, panels):
            sub = _in_panel(df, dataset, budget)
            ax.set_title(f"{dataset}, {budget_label(budget)}")
            for method in style.method_order(sub["method"]):
                yield ax, method, sub[sub["method"] == method], pal[method]
    return fig, axes, items()


def accuracy_curves(res: Results, weighting: str = "sample"):
    df = _cil(res.curves, res)
    if df.empty:
        return style.placeholder("no class-incremental runs"), "no class-incremental runs"
    col = f"acc_{weighting}"
    fig, axes, items = _method_panels(df)
    for ax, method, rows, colour in items:
        g = rows.groupby("step")[col].agg(["mean", "std", "count"])
        mean, std = g["mean"] * 100, g["std"].fillna(0) * 100
        ax.plot(g.index, mean, marker="o", ms=3, color=colour, label=method)
        ax.fill_between(g.index, mean - std, mean + std, color=colour, alpha=0.2, lw=0)
    for ax in axes:
        ax.set(xlabel="tasks learned", ylabel=f"accuracy on seen classes (%, {weighting}-weighted)", ylim=(0, 100))
        ax.xaxis.get_major_locator().set_params(integer=True)
    _legend(fig, axes)
    return fig, None


def accuracy_vs_budget(res: Results, weighting: str = "sample"):
    from .variants import CURVE_METHODS, crossing_summary, curve_stats

    df = _cil(res.runs, res)
    df = df[df["budget_bytes"].notna() & df["method"].isin(CURVE_METHODS)]
    if df.empty:
        return style.placeholder("no class-incremental runs with a memory budget"), "no runs with a budget"
    col = f"avg_acc_{weighting}"
    fig, axes, pal = _dataset_panels(df)
    for ax, (dataset, sub) in zip(axes, df.groupby("dataset")):
        for method in style.method_order(sub["method"]):
            g = sub[sub["method"] == method].groupby("budget_bytes")[col].agg(["mean", "std"]).sort_index()
            ax.errorbar(g.index.astype(float), g["mean"] * 100, yerr=g["std"].fillna(0) * 100, marker="o", ms=3,
                        capsize=2, color=pal[method], label=method)
        ax.set_xscale("log")
        sentences, _ = crossing_summary(curve_stats(res, weighting), dataset)
        # where the curves cross, or that BrainCL never leads
        title = "\n".join(textwrap.fill(s.split(": ", 1)[1], 90) for s in sentences[:3])
        ax.set(title=f"{dataset}, {sub['budget_bytes'].nunique()} budgets\n{title}",
               xlabel="memory budget (bytes, log scale)", ylabel=f"average accuracy (%, {weighting}-weighted)",
               ylim=(0, 100))
    _legend(fig, axes)
    return fig, None


SPECTRA_METHODS = ("braincl", "er", "ewc", "finetune")


def feature_spectra(res: Results):
    """One panel per data set: the final feature spectra of EWC, finetune, ER and BrainCL (the
    budgeted ones at each budget, dashed at the smaller), each labelled with its effective rank."""
    from .tables import spectra_stats

    df = _cil(res.spectra, res)
    df = df[df["method"].isin(SPECTRA_METHODS)]
    if df.empty:
        return style.placeholder("no run recorded analysis.feature_spectrum"), "no feature spectra"
    ranks = spectra_stats(res)
    fig, axes, pal = _dataset_panels(df)
    for ax, (dataset, sub) in zip(axes, df.groupby("dataset")):
        for method in style.method_order(sub["method"]):
            m = sub[sub["method"] == method]
            budgets = sorted(m["budget_bytes"].dropna().unique())
            for budget in (budgets or [None]):
                g = _in_panel(m, dataset, budget).groupby("index")["eigenvalue"].mean()
                g = g[g > 0]  # exact zeros (rank deficiency) have no place on a log axis
                r = _in_panel(ranks[ranks["method"] == method], dataset, budget)["effective_rank"]
                spread = f" ± {r.std(ddof=1):.1f}" if len(r) > 1 else ""
                where = "" if budget is None else f" @ {budget_label(budget)}"
                ls = "--" if budget is not None and budget != budgets[-1] else "-"
                ax.plot(g.index, g.values, color=pal[method], ls=ls,
                        label=f"{method}{where}: eff. rank {r.mean():.1f}{spread} (n={len(r)})")
        ax.set_yscale("log")
        ax.set_ylim(bottom=max(ax.get_ylim()[0], SPECTRUM_FLOOR))  # below: numerical noise of a rank-deficient covariance
        ax.set(title=f"Feature spectra after the last task: {dataset}", xlabel="eigenvalue index (descending)",
               ylabel="normalised eigenvalue\n(fraction of variance)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)  # outside: never covers the axes
    return fig, None


def accuracy_vs_flops(res: Results, weighting: str = "sample"):
    """Final accuracy against training FLOPs, one point per method and budget (mean over seeds, error
    bars = std); a hollow marker joined by a thin line adds the encoding FLOPs (codec, generator)."""
    df = _cil(res.runs, res)
    df = df[df["training_flops"].notna() & (df["training_flops"] > 0)]
    if df.empty:
        note = "no record has a compute section (schema v3)"
        return style.placeholder(note), note
    col = f"last_acc_{weighting}"
    fig, axes, pal = _dataset_panels(df)
    markers = "osD^v<>"
    for ax, (dataset, sub) in zip(axes, df.groupby("dataset")):
        budgets = sorted(sub["budget_bytes"].dropna().unique())
        for method in style.method_order(sub["method"]):
            g = sub[sub["method"] == method].assign(total=lambda d: d["training_flops"] + d["encoding_flops"].fillna(0))
            for budget, gb in g.groupby(g["budget_bytes"].astype("Float64").fillna(-1)):
                x, y, tot = gb["training_flops"], gb[col] * 100, gb["total"]
                mk = "*" if budget < 0 else markers[budgets.index(budget) % len(markers)]
                ax.errorbar(x.mean(), y.mean(), xerr=x.std(ddof=1) if len(x) > 1 else 0,
                            yerr=y.std(ddof=1) if len(y) > 1 else 0, marker=mk, ms=4, capsize=2, color=pal[method],
                            label=method, ls="none")
                if tot.mean() > x.mean():
                    ax.plot([x.mean(), tot.mean()], [y.mean(), y.mean()], color=pal[method], lw=0.6)
                    ax.plot(tot.mean(), y.mean(), marker=mk, ms=4, mfc="none", color=pal[method])
        ax.set_xscale("log")
        shapes = ", ".join(f"{markers[i % len(markers)]} {budget_label(b)}" for i, b in enumerate(budgets))
        ax.set(title=f"{dataset}: last accuracy vs training compute\nmarkers: {shapes}, * no budget; hollow: "
                     "+ encoding (codec/generator)",
               xlabel="training FLOPs per run (log scale)", ylabel=f"last accuracy (%, {weighting}-weighted)",
               ylim=(0, 100))
        handles, labels = ax.get_legend_handles_labels()
        keep = dict(zip(labels, handles))
        ax.legend(keep.values(), keep.keys(), loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return fig, None


def training_length(res: Results, weighting: str = "sample"):
    """Last accuracy at each training length (train.epochs on the x axis), one panel per data set and
    budget and one line per method: a line that crosses another is a change of ranking."""
    from .variants import training_settings

    df = training_settings(res)
    if not (df["variant"] != "").any() or df["epochs"].isna().all():
        note = "no runs at a second training length (snakemake --cores 2 training_length)"
        return style.placeholder(note), note
    # Only methods and budgets that ran at more than one training length, so every line has two ends
    # (the budget curve's extra budgets ran at the default length only).
    lengths = df.groupby(["dataset", "method", "budget_bytes"], dropna=False)["epochs"].transform("nunique")
    df = df[lengths > 1]
    if df.empty:
        note = "no method and budget ran at both training lengths"
        return style.placeholder(note), note
    col = f"last_acc_{weighting}"
    fig, axes, items = _method_panels(df)
    for ax, method, rows, colour in items:
        g = rows.groupby("epochs")[col].agg(["mean", "std"]).sort_index()
        ax.errorbar(g.index, g["mean"] * 100, yerr=g["std"].fillna(0) * 100, marker="o", ms=3, capsize=2,
                    color=colour, label=method)
    ticks = sorted(df["epochs"].dropna().unique())
    pad = 0.5 * (ticks[-1] - ticks[0])
    for ax in axes:
        ax.set(xticks=ticks, xlim=(ticks[0] - pad, ticks[-1] + pad), xlabel="train.epochs (every method)",
               ylabel=f"last accuracy (%, {weighting}-weighted)")
    _legend(fig, axes)
    return fig, None


def robustness_severity(res: Results):
    """Accuracy under covariate shift against severity (0 = clean), mean over corruptions, per budget."""
    cs = res.covariate_shift[res.covariate_shift["variant"] == ""]
    if cs.empty:
        note = "no run has protocols.covariate_shift results"
        return style.placeholder(note), note
    per_run = cs.groupby(["dataset", "method", "budget_bytes", "seed", "severity"], dropna=False)["accuracy"].mean()
    per_run = per_run.reset_index()
    pal = style.palette(per_run["method"])
    panels = _panels(per_run)
    fig, axes = style.subplots(len(panels))
    for ax, (dataset, budget) in zip(axes, panels):
        sub = _in_panel(per_run, dataset, budget)
        for method in style.method_order(sub["method"]):
            g = sub[sub["method"] == method].groupby("severity")["accuracy"].agg(["mean", "std"])
            ax.errorbar(g.index, g["mean"] * 100, yerr=g["std"].fillna(0) * 100, marker="o", ms=3, capsize=2,
                        color=pal[method], label=method)
        ax.set(title=f"{dataset}, {budget_label(budget)}", xlabel="corruption severity (0 = clean)",
               ylabel="accuracy, mean over corruptions (%)", ylim=(0, 100))
    _legend(fig, axes)
    return fig, None


def robustness_longtail(res: Results, weighting: str = "sample"):
    """Average accuracy against the long-tail imbalance ratio rho (rho = 1: the balanced plain runs)."""
    lt = res.runs[res.runs["long_tail"] & (res.runs["variant"] == "") & res.runs["rho"].notna()]
    if lt.empty:
        note = "no long-tailed runs"
        return style.placeholder(note), note
    col = f"avg_acc_{weighting}"
    plain = _cil(res.runs, res)
    plain = plain[plain["method"].isin(lt["method"].unique())].assign(rho=1.0)
    plain = plain.merge(lt[["dataset", "budget_bytes"]].drop_duplicates(), on=["dataset", "budget_bytes"])
    df = pd.concat([plain, lt], ignore_index=True)
    pal = style.palette(df["method"])
    panels = _panels(df)
    fig, axes = style.subplots(len(panels))
    for ax, (dataset, budget) in zip(axes, panels):
        sub = _in_panel(df, dataset, budget)
        for method in style.method_order(sub["method"]):
            g = sub[sub["method"] == method].groupby("rho")[col].agg(["mean", "std"])
            ax.errorbar(g.index, g["mean"] * 100, yerr=g["std"].fillna(0) * 100, marker="o", ms=3, capsize=2,
                        color=pal[method], label=method)
        ax.set_xscale("log")
        ax.set(title=f"{dataset}, {budget_label(budget)}", xlabel="imbalance ratio ρ (1 = balanced, log scale)",
               ylabel=f"average accuracy (%, {weighting}-weighted)", ylim=(0, 100))
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
        np.random.seed(0)  # seaborn jitters with numpy's global generator: fixed, so the file's bytes are too
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
        "accuracy_vs_flops": lambda: accuracy_vs_flops(res, weighting),
        "training_length": lambda: training_length(res, weighting),
        "robustness_severity": lambda: robustness_severity(res),
        "robustness_longtail": lambda: robustness_longtail(res, weighting),
        "classwise_accuracy": lambda: classwise_accuracy(res),
        "attention_drift": lambda: attention_drift(res),
        "rate_distortion": lambda: rate_distortion(benchmarks),
    }
