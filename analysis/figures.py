"""Paper-style figures from the loaded run records (and the codec benchmark CSV). Each builder
returns ``(figure, note)``: a figure without data is a placeholder that says why, and ``note``
carries that reason for the command line.

Every figure draws methods with ``style.line_kw`` (one name, colour and marker per method), has one
legend outside the axes, a short title (the detail is in ``analysis/captions/<figure>.rst``) and
accuracy axes zoomed to the data, and passes ``style.layout_problems`` (tests/test_figure_layout.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from . import style
from .load import Results, main_keys
from .outputs import UPPER_BOUNDS
from .render import budget_label

SPECTRUM_FLOOR = 1e-7         # normalised eigenvalues below this are float noise
ATTENTION_BASELINES = ("er", "derpp")  # plain replay of raw exemplars, and replay with logit distillation
ATTENTION_MAX_TASKS = 6      # columns of maps; tasks are sampled evenly beyond this
DODGE = 0.16                 # total horizontal spread of methods drawn at the same x, in units of the x step
LEGEND_ROW_IN = 0.16         # inches per legend row below the axes


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


def _panel_title(dataset, budget, datasets) -> str:
    return short_bytes(budget) if len(set(datasets)) == 1 else f"{dataset}, {short_bytes(budget)}"


def short_bytes(b) -> str:
    """'56 KB', '1 MB', '1.5 MB': budget_label without trailing zeros, for tick labels."""
    text = budget_label(b)
    num, _, unit = text.partition(" ")
    try:
        return f"{float(num):g} {unit}"
    except ValueError:
        return text


def _legend_height(n: int, ncols: int) -> float:
    return LEGEND_ROW_IN * -(-n // ncols) + 0.1


def _dataset_pair_rows(datasets, methods):
    """A double-column figure with one row of two panels per data set and room for a method legend."""
    return style.figure(style.DOUBLE_COLUMN, 2.1 * len(datasets) + 0.3 + _legend_height(len(methods), 7),
                        len(datasets), 2)

def _offsets(methods: list[str], step: float) -> dict[str, float]:
    """Horizontal offsets that keep methods drawn at the same x apart (centred on the true x)."""
    n = len(methods)
    if n < 2:
        return {m: 0.0 for m in methods}
    return {m: (i - (n - 1) / 2) * step * DODGE / (n - 1) * 2 for i, m in enumerate(methods)}


def _zoom(ax, lows, highs, lo: float = 0.0, hi: float = 100.0, pad: float = 0.08) -> None:
    """y limits around the data (means and their spread) with a margin, inside [lo, hi]."""
    lows, highs = np.asarray(lows, float), np.asarray(highs, float)
    lows, highs = lows[np.isfinite(lows)], highs[np.isfinite(highs)]
    if not len(lows) or not len(highs):
        return
    a, b = lows.min(), highs.max()
    span = max(b - a, 1.0)
    ax.set_ylim(max(lo, a - pad * span), min(hi, b + pad * span) if hi is not None else b + pad * span)


def _budget_axis(ax, budgets) -> None:
    """Log x axis labelled at the budgets themselves, dropping a label too close to the previous one."""
    import matplotlib.ticker as mticker

    budgets = sorted(float(b) for b in budgets)
    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(mticker.NullLocator())
    labelled, last = [], None
    for b in budgets:
        if last is None or np.log10(b / last) > 0.12:
            labelled.append(b)
            last = b
    ax.set_xticks(budgets, [short_bytes(b) if b in labelled else "" for b in budgets])


def _errorbar(ax, x, mean, std, name, **kw):
    """Mean ± std with thin bars; returns the handle for the legend."""
    kws = style.line_kw(name)
    kws.update(kw)
    eb = ax.errorbar(x, mean, yerr=std, elinewidth=0.6, capthick=0.6, **kws)
    return eb


def _agg(g: pd.core.groupby.SeriesGroupBy) -> pd.DataFrame:
    out = g.agg(["mean", "std", "count"])
    out["std"] = out["std"].fillna(0)
    return out


# --- accuracy over tasks --------------------------------------------------------------------------

def accuracy_curves(res: Results, weighting: str = "sample"):
    """A_t after each task, one panel per data set and budget, one line per method (mean over seeds,
    band: ± 1 std). Each panel's y axis is zoomed to its own data."""
    df = _cil(res.curves, res)
    if df.empty:
        return style.placeholder("no class-incremental runs"), "no class-incremental runs"
    col = f"acc_{weighting}"
    panels = _panels(df)
    ncols = min(len(panels), 4)
    nrows = -(-len(panels) // ncols)
    methods = style.method_order(df["method"])
    legend_cols = min(len(methods), 7)
    fig, axes = style.figure(style.DOUBLE_COLUMN, 1.45 * nrows + 0.35 + _legend_height(len(methods), legend_cols),
                             nrows, ncols, sharex=True)
    handles = {}
    for ax, (dataset, budget) in zip(axes, panels):
        sub = _in_panel(df, dataset, budget)
        lows, highs = [], []
        off = _offsets(style.method_order(sub["method"]), 0.5)
        for method in style.drawing_order(sub["method"]):
            g = _agg(sub[sub["method"] == method].groupby("step")[col]) * [100, 100, 1]
            kw = style.line_kw(method, markersize=2.5)
            x = g.index + off[method]  # methods with equal accuracy stay visible side by side
            (line,) = ax.plot(x, g["mean"], **kw)
            ax.fill_between(x, g["mean"] - g["std"], g["mean"] + g["std"], color=kw["color"], alpha=0.15,
                            lw=0, zorder=kw["zorder"] - 2)
            handles.setdefault(method, line)
            lows.append((g["mean"] - g["std"]).min())
            highs.append((g["mean"] + g["std"]).max())
        _zoom(ax, lows, highs)
        ax.set_title(_panel_title(dataset, budget, df["dataset"]))
        ax.set_xticks(sorted(df["step"].unique()))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10], integer=True))
        ax.grid(axis="x", visible=False)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.supxlabel("tasks learned", fontsize=style.FONT_PT)
    fig.supylabel(f"accuracy, seen classes (%, {weighting}-wt.)", fontsize=style.FONT_PT)
    style.method_legend(fig, handles, legend_cols)
    return fig, None


# --- accuracy against the memory budget -----------------------------------------------------------

def accuracy_vs_budget(res: Results, weighting: str = "sample"):
    """Per data set: average accuracy against the budget (left, zoomed) and each method's paired
    difference to BrainCL at the same seed (right; above zero: the method beats BrainCL)."""
    from .variants import CURVE_METHODS

    df = _cil(res.runs, res)
    df = df[df["budget_bytes"].notna() & df["method"].isin(CURVE_METHODS)]
    if df.empty:
        return style.placeholder("no class-incremental runs with a memory budget"), "no runs with a budget"
    col = f"avg_acc_{weighting}"
    datasets = sorted(df["dataset"].unique())
    methods = style.method_order(df["method"])
    fig, axes = _dataset_pair_rows(datasets, methods)
    handles = {}
    for r, dataset in enumerate(datasets):
        sub = df[df["dataset"] == dataset].assign(acc=lambda d: d[col] * 100)
        budgets = sorted(sub["budget_bytes"].astype(float).unique())
        ax, dax = axes[2 * r], axes[2 * r + 1]
        step = np.log10(budgets[-1] / budgets[0]) / max(len(budgets) - 1, 1) if len(budgets) > 1 else 0.1
        off = _offsets(style.method_order(sub["method"]), step)
        lows, highs = [], []
        for method in style.drawing_order(sub["method"]):
            g = _agg(sub[sub["method"] == method].groupby("budget_bytes")["acc"]).sort_index()
            x = g.index.astype(float) * 10 ** off[method]
            handles.setdefault(method, _errorbar(ax, x, g["mean"], g["std"], method))
            lows.append((g["mean"] - g["std"]).min())
            highs.append((g["mean"] + g["std"]).max())
        _zoom(ax, lows, highs)
        ax.set(title=dataset if len(datasets) > 1 else "Average accuracy", ylabel=f"average accuracy (%)")
        _budget_axis(ax, budgets)
        ref = sub[sub["method"] == style.HIGHLIGHT][["budget_bytes", "seed", "acc"]].rename(columns={"acc": "ref"})
        if ref.empty:
            dax.set_visible(False)
            continue
        dlow, dhigh = [0.0], [0.0]
        dax.axhline(0, **{k: v for k, v in style.line_kw(style.HIGHLIGHT).items()
                          if k in ("color", "lw", "zorder")}, marker="")
        for method in style.drawing_order(sub["method"]):
            if method == style.HIGHLIGHT:
                continue
            paired = sub[sub["method"] == method].merge(ref, on=["budget_bytes", "seed"])
            if paired.empty:
                continue
            g = _agg(paired.assign(d=paired["acc"] - paired["ref"]).groupby("budget_bytes")["d"]).sort_index()
            _errorbar(dax, g.index.astype(float) * 10 ** off[method], g["mean"], g["std"], method)
            dlow.append((g["mean"] - g["std"]).min())
            dhigh.append((g["mean"] + g["std"]).max())
        _zoom(dax, dlow, dhigh, lo=-100, hi=100)
        dax.set(title=f"Difference to {style.label(style.HIGHLIGHT)}", ylabel="Δ accuracy (points)")
        _budget_axis(dax, budgets)
    fig.supxlabel("memory budget (bytes, log scale)", fontsize=style.FONT_PT)
    style.method_legend(fig, handles)
    return fig, None


# --- feature spectra ------------------------------------------------------------------------------

SPECTRA_METHODS = ("braincl", "er", "ewc", "finetune")


def _main_budgets(df: pd.DataFrame) -> list:
    """The budgets at which the most methods ran (the default grid's), ascending."""
    counts = df[df["budget_bytes"].notna()].groupby("budget_bytes")["method"].nunique()
    if counts.empty:
        return []
    return sorted(counts[counts == counts.max()].index)


def feature_spectra(res: Results):
    """Per data set: the final spectra at one budget (left: the smallest of the default grid's) and
    the effective rank against the budget (right; methods without a budget as flat lines)."""
    from .tables import spectra_stats

    df = _cil(res.spectra, res)
    df = df[df["method"].isin(SPECTRA_METHODS)]
    if df.empty:
        return style.placeholder("no run recorded analysis.feature_spectrum"), "no feature spectra"
    ranks = spectra_stats(res)
    ranks = ranks[ranks["method"].isin(SPECTRA_METHODS)]
    datasets = sorted(df["dataset"].unique())
    methods = style.method_order(df["method"])
    fig, axes = _dataset_pair_rows(datasets, methods)
    handles = {}
    for r, dataset in enumerate(datasets):
        sub = df[df["dataset"] == dataset]
        ax, rax = axes[2 * r], axes[2 * r + 1]
        main = _main_budgets(sub)
        shown = main[0] if main else None
        floor, top = np.inf, 0.0
        for method in style.drawing_order(sub["method"]):
            m = sub[sub["method"] == method]
            budget = None if m["budget_bytes"].isna().all() else (shown if shown in set(m["budget_bytes"].dropna())
                                                                  else m["budget_bytes"].dropna().min())
            g = _in_panel(m, dataset, budget).groupby("index")["eigenvalue"].mean()
            g = g[g > SPECTRUM_FLOOR]  # exact zeros (rank deficiency) and float noise have no place on a log axis
            if g.empty:
                continue
            kw = {**style.line_kw(method), "marker": ""}
            (line,) = ax.plot(g.index, g.values, **kw)
            handles.setdefault(method, line)
            floor, top = min(floor, g.min()), max(top, g.max())
        ax.set_yscale("log")
        if np.isfinite(floor) and top > 0:
            ax.set_ylim(floor / 2, top * 2)
        where = f" ({dataset})" if len(datasets) > 1 else ""
        ax.set(title=f"Spectrum at {short_bytes(shown)}{where}" if shown is not None else f"Spectrum{where}",
               xlabel="eigenvalue index (descending)", ylabel="fraction of variance")
        ax.xaxis.get_major_locator().set_params(integer=True)
        rk = ranks[ranks["dataset"] == dataset]
        budgets = sorted(rk["budget_bytes"].dropna().astype(float).unique())
        budgeted = style.method_order(rk.loc[rk["budget_bytes"].notna(), "method"])
        roff = _offsets(budgeted, np.log10(budgets[-1] / budgets[0]) / max(len(budgets) - 1, 1)
                        if len(budgets) > 1 else 0.1)
        for method in style.drawing_order(rk["method"]):
            m = rk[rk["method"] == method]
            if m["budget_bytes"].isna().all():
                mean = m["effective_rank"].mean()
                kw = style.line_kw(method)
                h = rax.axhline(mean, color=kw["color"], ls=kw["ls"], lw=kw["lw"], zorder=kw["zorder"])
                handles.setdefault(method, h)
                continue
            g = _agg(m.groupby("budget_bytes")["effective_rank"]).sort_index()
            x = g.index.astype(float) * 10 ** roff.get(method, 0.0)
            handles.setdefault(method, _errorbar(rax, x, g["mean"], g["std"], method))
        if budgets:
            _budget_axis(rax, budgets)
            if shown is not None:
                rax.axvline(float(shown), color="0.6", lw=0.6, ls=":", zorder=1)
        rax.set(title="Effective rank", xlabel="memory budget (bytes, log scale)", ylabel="effective rank")
        rax.set_ylim(bottom=0)
    style.method_legend(fig, handles)
    return fig, None


# --- compute --------------------------------------------------------------------------------------

def accuracy_vs_flops(res: Results, weighting: str = "sample"):
    """Compute (left: training plus encoding FLOPs of the whole run) and last accuracy (right) side by
    side, one row per method in the tables' order, one point per budget of the default grid (filled:
    the larger), mean ± std over seeds. Rows instead of a scatter: twelve methods at two budgets
    overlap in a scatter of accuracy against FLOPs."""
    df = _cil(res.runs, res)
    df = df[df["training_flops"].notna() & (df["training_flops"] > 0)]
    if df.empty:
        note = "no record has a compute section (schema v3)"
        return style.placeholder(note), note
    col = f"last_acc_{weighting}"
    df = df.assign(total=df["training_flops"] + df["encoding_flops"].fillna(0), acc=df[col] * 100)
    datasets = sorted(df["dataset"].unique())
    methods = style.method_order(df["method"])
    fig, axes = style.figure(style.DOUBLE_COLUMN, (0.14 * len(methods) + 0.55) * len(datasets) + 0.35,
                             len(datasets), 2, sharey="row")
    pos = {m: i for i, m in enumerate(reversed(methods))}
    budget_handles = {}
    for r, dataset in enumerate(datasets):
        sub = df[df["dataset"] == dataset]
        budgets = _main_budgets(sub)
        sub = sub[sub["budget_bytes"].isna() | sub["budget_bytes"].isin(budgets)]
        fax, aax = axes[2 * r], axes[2 * r + 1]
        for method in style.method_order(sub["method"]):
            m = sub[sub["method"] == method]
            kw = style.line_kw(method)
            for key, g in m.groupby(m["budget_bytes"].astype("Float64").fillna(-1)):
                filled = key < 0 or key == max(budgets)
                dy = 0 if key < 0 or len(budgets) < 2 else (0.17 if filled else -0.17)
                for ax, values in ((fax, g["total"]), (aax, g["acc"])):
                    ax.errorbar(values.mean(), pos[method] + dy, xerr=values.std(ddof=1) if len(values) > 1 else 0,
                                    ls="none", marker=kw["marker"], ms=kw["ms"], color=kw["color"], mec=kw["color"],
                                    mfc=kw["color"] if filled else "white", mew=0.8, elinewidth=0.6, capthick=0.6,
                                    zorder=kw["zorder"])
                if key >= 0:
                    budget_handles.setdefault(float(key), ax.errorbar([], [], ls="none", marker="o", color="0.3",
                                                                      mfc="0.3" if filled else "white", ms=3.5))
        _log_ticks(fax, sub["total"].min() / 1.15, sub["total"].max() * 1.15)
        fax.set(xlabel="training + encoding FLOPs per run (log scale)", title="Compute" +
                (f" ({dataset})" if len(datasets) > 1 else ""))
        _zoom_x(aax, sub["acc"])
        aax.set(xlabel=f"last accuracy (%, {weighting}-weighted)", title="Accuracy")
        fax.set_yticks(list(pos.values()), [style.label(m) for m in pos])
        fax.set_ylim(-0.7, len(methods) - 0.3)
        for ax in (fax, aax):
            ax.grid(axis="y", visible=False)
    if budget_handles:
        fig.legend(list(budget_handles.values()), [f"budget {short_bytes(b)}" for b in budget_handles] +
                   [], loc="outside upper center", ncols=len(budget_handles))
    return fig, None


def _log_ticks(ax, lo: float, hi: float) -> None:
    """Log x axis over [lo, hi] with ticks at 1, 2, 3 and 5 times a power of ten, thinned so that
    neighbouring labels stay apart, written as m×10^e."""
    import matplotlib.ticker as mticker

    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    span = np.log10(hi / lo)
    candidates = [m * 10.0 ** e for e in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
                  for m in (1, 2, 3, 5)]
    ticks, last = [], None
    for t in candidates:
        if lo <= t <= hi and (last is None or np.log10(t / last) >= span / 4):
            ticks.append(t)
            last = t

    def fmt(v):
        e = int(np.floor(np.log10(v) + 1e-9))
        m = v / 10 ** e
        return f"$10^{{{e}}}$" if round(m) == 1 else f"${m:g}\\times10^{{{e}}}$"
    ax.xaxis.set_minor_locator(mticker.NullLocator())
    ax.set_xticks(ticks, [fmt(t) for t in ticks])


def _zoom_x(ax, values, lo: float = 0.0, hi: float = 100.0, pad: float = 0.05) -> None:
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if len(values):
        span = max(values.max() - values.min(), 1.0)
        ax.set_xlim(max(lo, values.min() - pad * span), min(hi, values.max() + pad * span))


# --- training length ------------------------------------------------------------------------------

def training_length(res: Results, weighting: str = "sample"):
    """Last accuracy at each training length (train.epochs), one panel per data set and budget and
    one line per method, methods offset sideways so that equal values stay visible."""
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
    panels = _panels(df)
    ncols = min(len(panels), 3)
    nrows = -(-len(panels) // ncols)
    methods = style.method_order(df["method"])
    fig, axes = style.figure(style.DOUBLE_COLUMN, 2.0 * nrows + 0.3 + _legend_height(len(methods), 7), nrows, ncols)
    ticks = sorted(df["epochs"].dropna().unique())
    step = (ticks[-1] - ticks[0]) if len(ticks) > 1 else 1.0
    handles = {}
    for ax, (dataset, budget) in zip(axes, panels):
        sub = _in_panel(df, dataset, budget).assign(acc=lambda d: d[col] * 100)
        off = _offsets(style.method_order(sub["method"]), step * 0.6)
        lows, highs = [], []
        for method in style.drawing_order(sub["method"]):
            g = _agg(sub[sub["method"] == method].groupby("epochs")["acc"]).sort_index()
            handles.setdefault(method, _errorbar(ax, g.index + off[method], g["mean"], g["std"], method))
            lows.append((g["mean"] - g["std"]).min())
            highs.append((g["mean"] + g["std"]).max())
        _zoom(ax, lows, highs)
        pad = 0.3 * step
        ax.set(xticks=ticks, xticklabels=[f"{t:g}" for t in ticks], xlim=(ticks[0] - pad, ticks[-1] + pad),
               title=_panel_title(dataset, budget, df["dataset"]))
        ax.grid(axis="x", visible=False)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.supxlabel("training epochs per task (train.epochs, every method)", fontsize=style.FONT_PT)
    fig.supylabel(f"last accuracy (%, {weighting}-weighted)", fontsize=style.FONT_PT)
    style.method_legend(fig, handles)
    return fig, None


# --- robustness -----------------------------------------------------------------------------------

def _robustness_figure(df: pd.DataFrame, x: str, value: str, xlabel: str, ylabel: str, log_x: bool):
    """One panel per data set and budget, one offset error-bar line per method against ``x``."""
    panels = _panels(df)
    ncols = min(len(panels), 3)
    nrows = -(-len(panels) // ncols)
    methods = style.method_order(df["method"])
    width = style.SINGLE_COLUMN if len(panels) == 1 else style.DOUBLE_COLUMN
    legend_cols = 4 if len(panels) == 1 else 7
    fig, axes = style.figure(width, 2.1 * nrows + 0.2 + _legend_height(len(methods), legend_cols), nrows, ncols)
    xs = sorted(df[x].dropna().unique())
    if log_x:
        step = np.log10(xs[-1] / xs[0]) / max(len(xs) - 1, 1) if len(xs) > 1 else 0.2
    else:
        step = (xs[-1] - xs[0]) / max(len(xs) - 1, 1) if len(xs) > 1 else 1.0
    handles = {}
    for ax, (dataset, budget) in zip(axes, panels):
        sub = _in_panel(df, dataset, budget)
        # a wide spread: the error bars of the methods at one x stand side by side, not on one another
        off = _offsets(style.method_order(sub["method"]), step * 2.5)
        lows, highs = [], []
        for method in style.drawing_order(sub["method"]):
            g = _agg(sub[sub["method"] == method].groupby(x)[value]).sort_index()
            where = g.index.astype(float) * 10 ** off[method] if log_x else g.index.astype(float) + off[method]
            handles.setdefault(method, _errorbar(ax, where, g["mean"] * 100, g["std"] * 100, method))
            lows.append((g["mean"] - g["std"]).min() * 100)
            highs.append((g["mean"] + g["std"]).max() * 100)
        _zoom(ax, lows, highs)
        if log_x:
            import matplotlib.ticker as mticker

            ax.set_xscale("log")
            ax.xaxis.set_minor_locator(mticker.NullLocator())
        ax.set_xticks(xs, [f"{v:g}" for v in xs])
        ax.set(title=_panel_title(dataset, budget, df["dataset"]), xlabel=xlabel, ylabel=ylabel)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    style.method_legend(fig, handles, legend_cols)
    return fig


def robustness_severity(res: Results):
    """Accuracy under covariate shift against severity (0 = clean), mean over corruptions, per budget."""
    cs = res.covariate_shift[res.covariate_shift["variant"] == ""]
    if cs.empty:
        note = "no run has protocols.covariate_shift results"
        return style.placeholder(note), note
    per_run = cs.groupby(["dataset", "method", "budget_bytes", "seed", "severity"], dropna=False)["accuracy"].mean()
    fig = _robustness_figure(per_run.reset_index(), "severity", "accuracy", "corruption severity (0 = clean)",
                             "accuracy (%)", log_x=False)
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
    fig = _robustness_figure(df, "rho", col, "imbalance ratio ρ (1 = balanced, log scale)",
                             f"average accuracy (%, {weighting}-weighted)", log_x=True)
    return fig, None


# --- per-class accuracy ---------------------------------------------------------------------------

def classwise_accuracy(res: Results):
    """Per-class accuracy after the last task: one horizontal box per method (all classes of all
    seeds) with the classes as dots, one panel per data set and budget, methods in the tables' order."""
    df = _cil(res.per_class, res)
    if df.empty:
        return style.placeholder("no run recorded accuracy.per_class"), "no per-class accuracy"
    last = df[df["after_task"] == df.groupby(["dataset", "method", "budget_bytes", "seed"], dropna=False)["after_task"]
              .transform("max")].assign(percent=lambda d: d["accuracy"] * 100)
    panels = _panels(last)
    methods = style.method_order(last["method"])
    ncols = min(len(panels), 4)
    nrows = -(-len(panels) // ncols)
    row_h = 0.11 * len(methods) + 0.35
    fig, axes = style.figure(style.DOUBLE_COLUMN, row_h * nrows + 0.25, nrows, ncols, sharey=True, sharex=True)
    pos = {m: i for i, m in enumerate(reversed(methods))}  # first method on top
    rng = np.random.default_rng(0)  # fixed jitter: the same records give the same bytes
    for ax, (dataset, budget) in zip(axes, panels):
        sub = _in_panel(last, dataset, budget)
        for method in style.method_order(sub["method"]):
            values = sub.loc[sub["method"] == method, "percent"].to_numpy()
            kw = style.line_kw(method)
            bp = ax.boxplot(values, positions=[pos[method]], orientation="horizontal", widths=0.6, showfliers=False,
                            patch_artist=True, manage_ticks=False)
            for box in bp["boxes"]:
                box.set(facecolor=kw["color"], alpha=0.35, edgecolor=kw["color"], lw=0.6)
            for part in ("whiskers", "caps", "medians"):
                for line in bp[part]:
                    line.set(color=kw["color"] if part != "medians" else "black", lw=0.8, label="_nolegend_")
            ax.scatter(values, pos[method] + rng.uniform(-0.22, 0.22, len(values)), s=1.5, color="0.25", lw=0,
                       zorder=4)
        ax.set_title(_panel_title(dataset, budget, last["dataset"]))
        ax.set_xlim(-3, 103)
        ax.grid(axis="y", visible=False)
    axes[0].set_yticks(list(pos.values()), [style.label(m) for m in pos])
    axes[0].set_ylim(-0.7, len(methods) - 0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.supxlabel("per-class accuracy after the last task (%)", fontsize=style.FONT_PT)
    return fig, None


# --- attention ------------------------------------------------------------------------------------

def _attention_selection(att: pd.DataFrame):
    """The (dataset, budget) whose seed 0 (or first seed) has the most methods recorded, and up to
    three methods: BrainCL, then ER and DER++ (plain replay and replay with distillation), then
    other baselines in the tables' order (upper bounds only to fill up)."""
    counts = att.groupby(["dataset", "budget_bytes", "seed"], dropna=False)["method"].nunique()
    dataset, budget, seed = counts.sort_values(ascending=False, kind="stable").index[0]
    sub = _in_panel(att[att["dataset"] == dataset], dataset, budget)
    present = style.method_order(sub["method"])
    preferred = [style.HIGHLIGHT, *ATTENTION_BASELINES]
    rest = [m for m in present if m not in preferred]
    ranked = [m for m in preferred if m in present] + [m for m in rest if m not in UPPER_BOUNDS] + \
             [m for m in rest if m in UPPER_BOUNDS]
    methods = ranked[:1 + len(ATTENTION_BASELINES)]
    return sub[sub["method"].isin(methods)], methods, (dataset, budget, seed)


def _explained_images(res: Results, dataset, budget, seed, methods):
    """The test images the maps explain, rebuilt from the data set named in the run's record and the
    ``image_ids`` it recorded (``analysis.explained_images``, in a child process: this one never
    imports torch). None when the data set cannot be built here."""
    import subprocess
    import sys

    runs = res.runs[(res.runs["dataset"] == dataset) & (res.runs["seed"] == seed) & res.runs["method"].isin(methods)]
    runs = _in_panel(runs, dataset, budget)
    for path in runs["path"]:
        try:
            record = json.loads(Path(path).read_text())
            entry = record["analysis"]["attention"]["after_task"][0]
            request = {"dataset": record["config"]["dataset"], "image_ids": entry["image_ids"]}
            # recorded labels are positions in the scenario's class order, as are its class names
            names = record["scenario"].get("class_names") or record["scenario"]["class_order"]
            classes = [names[i] for i in entry["labels"]]
        except (OSError, KeyError, IndexError, TypeError, ValueError):
            continue
        proc = subprocess.run([sys.executable, "-m", "analysis.explained_images"], input=json.dumps(request),
                              capture_output=True, text=True, timeout=120)
        if proc.returncode == 0:
            try:
                return np.asarray(json.loads(proc.stdout), dtype=float), classes
            except ValueError:
                return None, None
        return None, classes
    return None, None


def attention_drift(res: Results):
    """Left: Grad-CAM map of one fixed task-1 test image after each task, over the image's outline,
    one row per method. Right: drift, the mean absolute change of the maps of all fixed images from
    those after task 1, mean ± std over seeds."""
    att = _cil(res.attention, res)
    if att.empty:
        return style.placeholder("no run recorded analysis.attention (eval.attention.enabled: true)"), "no attention maps"
    sub, methods, (dataset, budget, seed) = _attention_selection(att)
    tasks = sorted(sub["after_task"].unique())
    shown = [tasks[int(i)] for i in np.unique(np.linspace(0, len(tasks) - 1, min(len(tasks), ATTENTION_MAX_TASKS)).round())]
    images, labels = _explained_images(res, dataset, budget, seed, methods)
    image = sorted(sub["image"].unique())[0]
    cell_in = 0.62
    fig = style.plt.figure(figsize=(style.DOUBLE_COLUMN, cell_in * len(methods) + 0.75), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[len(shown) * cell_in + 1.2, 2.6])
    grid = left.subplots(len(methods), len(shown), squeeze=False)
    im = None
    one_seed = sub[sub["seed"] == seed]
    for r, method in enumerate(methods):
        for c, t in enumerate(shown):
            ax = grid[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            cell = one_seed[(one_seed["method"] == method) & (one_seed["after_task"] == t) & (one_seed["image"] == image)]
            if cell.empty:
                continue
            heat = cell["map"].iloc[0]
            if images is not None and image < len(images):
                img = images[image]
                h, w = img.shape
                im = ax.imshow(heat, cmap="inferno", vmin=0, vmax=1, interpolation="bilinear",
                               extent=(-0.5, w - 0.5, h - 0.5, -0.5))
                ax.contour(img, levels=[0.5 * img.max()], colors="#56B4E9", linewidths=0.7)
            else:
                im = ax.imshow(heat, cmap="inferno", vmin=0, vmax=1, interpolation="bilinear")
            if r == 0:
                ax.set_title(f"task {t}", fontsize=style.FONT_PT - 0.5, pad=2)
            if c == 0:
                ax.set_ylabel(style.label(method), fontsize=style.FONT_PT - 0.5, color=style.colour(method))
    if im is not None:
        left.colorbar(im, ax=grid, shrink=0.9, aspect=15, label="Grad-CAM", ticks=[0, 0.5, 1])
    what = f"class {labels[image]}" if labels and image < len(labels) else "image 1"
    left.suptitle(f"Grad-CAM, one task-1 test image ({what})" + ("" if images is not None else ", image unavailable"),
                  fontsize=style.FONT_PT)
    ax = right.subplots()
    handles = {}
    for method in style.drawing_order(methods):
        rows = []
        for s, m in sub[sub["method"] == method].groupby("seed"):
            first = {i: v for i, v in m[m["after_task"] == m["after_task"].min()][["image", "map"]].itertuples(index=False)}
            d = [float(np.abs(v - first[i]).mean()) if i in first and v.shape == first[i].shape else np.nan
                 for i, v in m[["image", "map"]].itertuples(index=False)]
            rows.append(m.assign(drift=d).groupby("after_task")["drift"].mean())
        g = pd.concat(rows, axis=1)
        mean, std = g.mean(axis=1), g.std(axis=1, ddof=1).fillna(0) if g.shape[1] > 1 else g.mean(axis=1) * 0
        handles[method] = _errorbar(ax, g.index, mean, std, method)
    ax.set(title="Drift from task 1", xlabel="tasks learned", ylabel="mean |map − map after task 1|")
    ax.set_ylim(bottom=0)
    ax.xaxis.get_major_locator().set_params(integer=True)
    right.legend([handles[m] for m in methods], [style.label(m) for m in methods], loc="outside upper center",
                 ncols=len(methods))
    return fig, None


# --- rate-distortion ------------------------------------------------------------------------------

RD_LABELS = ("method", "codec", "label", "model")


def _setting_text(row) -> str:
    setting = str(row.get("setting", "") or "")
    if setting.startswith("quality="):
        return "q=" + setting.split("=", 1)[1]
    if setting.startswith("lambda="):
        return "λ=" + f"{float(setting.split('=', 1)[1]):.0e}".replace("e-0", "e-")
    lam = row.get("lambda")
    if lam is not None and pd.notna(lam):
        return f"λ={float(lam):g}"
    return ""


def rate_distortion_plot(df: pd.DataFrame, label: str, x: str = "bytes_per_sample", data: str | None = None):
    """PSNR against stored bytes per sample, one line per codec, each point marked with its setting;
    lossless rows (PSNR = inf) as a vertical line with a label instead of a legend entry."""
    fig, (ax,) = style.figure(style.SINGLE_COLUMN, 2.5)
    handles = {}
    lossless = df[~np.isfinite(df["psnr_db"])]
    lossy = df[np.isfinite(df["psnr_db"])]
    for name in style.drawing_order(lossy[label].astype(str)):
        g = lossy[lossy[label].astype(str) == name].sort_values(x)
        kw = style.line_kw(name)
        (line,) = ax.plot(g[x], g["psnr_db"], **kw)
        handles[name] = line
        for i, (_, row) in enumerate(g.iterrows()):
            text = _setting_text(row)
            if text:  # alternate below-right and above-left, so that neighbouring points keep their labels apart
                below = i % 2 == 0
                ax.annotate(text, (row[x], row["psnr_db"]), textcoords="offset points", xytext=(4, -3) if below else (-4, 3),
                            ha="left" if below else "right", va="top" if below else "bottom",
                            fontsize=style.FONT_PT - 1.5, color=kw["color"])
    for _, row in lossless.iterrows():
        ax.axvline(row[x], color="0.5", ls="--", lw=0.8, zorder=1)
        ax.annotate(f"{style.label(str(row[label]))}, lossless", (row[x], 0), xycoords=("data", "axes fraction"),
                    textcoords="offset points", xytext=(2, 3), ha="left", va="bottom", rotation=90,
                    fontsize=style.FONT_PT - 1.5, color="0.35")
    ax.set_xscale("log")
    import matplotlib.ticker as mticker

    ax.xaxis.set_major_locator(mticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(mticker.NullFormatter())
    lo = df[x].min()
    hi = df[x].max()
    ax.set_xlim(lo / 1.35, hi * 1.25)
    if not lossy.empty:
        span = lossy["psnr_db"].max() - lossy["psnr_db"].min()
        ax.set_ylim(lossy["psnr_db"].min() - 0.12 * span - 0.5, lossy["psnr_db"].max() + 0.08 * span + 0.5)
    ax.set(xlabel="stored bytes per sample (log scale)", ylabel="PSNR (dB)")
    if data:
        ax.set_title(data)
    style.method_legend(fig, handles)
    return fig


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
    x = "bytes_per_sample_with_metadata" if "bytes_per_sample_with_metadata" in df.columns else "bytes_per_sample"
    df = df.assign(**{x: pd.to_numeric(df[x], errors="coerce"),
                      "psnr_db": pd.to_numeric(df["psnr_db"], errors="coerce")}).dropna(subset=[x, "psnr_db"])
    if not np.isfinite(df["psnr_db"]).any():
        note = f"{path} has no numeric rows"
        return style.placeholder(note), note
    return rate_distortion_plot(df, label, x, data_name(path.with_suffix(".json"))), None


def data_name(meta_path: Path) -> str | None:
    """The data set named in the benchmark's JSON (``data: "mnist5k: ..."``), for the title."""
    try:
        data = json.loads(meta_path.read_text()).get("data")
    except (OSError, ValueError, AttributeError):
        return None
    return f"{str(data).split(':', 1)[0]}, test split" if data else None


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
