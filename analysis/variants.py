"""Tables of the runs beside the headline grid: BrainCL's ablations, the replay controls at equal
bytes and training, the same grid at a longer training length with how its ranking moves, and the
memory-accuracy curve with where its curves cross.

Every difference is paired by seed (a variant and its reference run share class order and seed) and
shown as its mean with the 95% paired t interval (``stats.difference``); a variant without a
matching seed is not compared."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .load import MAIN_PROTOCOL, Results
from .render import Table, budget_label, mean_std_cell
from .stats import Difference, crossings, difference, kendall_tau, order_flips, ranking

# Ablation variants of the workflow's `ablations` target (config/config.yaml) and what each changes.
ABLATIONS = {
    "": "full BrainCL (defaults: sleep, frozen wake backbone, per-task completion, closest_to_mean, "
        "lambda 1e-2, fp16 decoders)",
    "nosleep": "sleep: false (the backbone is never trained)",
    "sleep-current": "sleep_data: current_task (the same sleep draws from the current task only: no replay)",
    "nofreeze": "freeze_backbone_in_wake: false (more backbone training than full BrainCL)",
    "nofreeze-equal": "freeze_backbone_in_wake: false, equal_backbone_updates: true (no more backbone training)",
    "shared": "completion: shared (one g_s retrained on every task)",
    "random": "selection: random",
    "herding": "selection: herding",
    "lambda1e-3": "lambda: 1e-3",
    "lambda1e-1": "lambda: 1e-1",
    "fp32": "decoder_precision: fp32",
    "raw": "memory_format: raw (raw uint8 images in long-term memory)",
    "jpeg": "memory_format: jpeg (JPEG images in long-term memory)",
}
# Controls at equal bytes and training: (method, variant) in table order, with what each one is.
CONTROLS = (
    ("er", "", "ER, per-step replay (default)"),
    ("er", "balanced", "ER with BrainCL's task-balanced sampler"),
    ("braincl", "", "BrainCL, entropy-coded cues"),
    ("braincl", "raw", "BrainCL, raw images in long-term memory"),
    ("braincl", "jpeg", "BrainCL, JPEG images in long-term memory"),
    ("jpeg_replay", "", "JPEG replay"),
    ("derpp", "", "DER++, growing head (default)"),
    ("derpp", "fixedhead", "DER++ with Mammoth's full-width head"),
)
# Variants of the whole default grid at another training length (workflow target `training_length`):
# every method gets the same longer schedule; the table compares each with the plain runs.
TRAINING_VARIANTS = ("ep8",)
# The memory-accuracy curve's methods (workflow target `budget_curve`).
CURVE_METHODS = ("braincl", "er", "derpp", "icarl", "jpeg_replay")
HIGHLIGHT = "braincl"


def plain_protocol(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs of the class-incremental protocol that changes nothing that is trained (any variant)."""
    return runs[(runs["protocol"] == MAIN_PROTOCOL) & ~runs["long_tail"] & ~runs["held_out_classes"]]


def paired_difference(runs: pd.DataFrame, reference: pd.DataFrame, metric: str) -> Difference:
    """``metric`` of ``runs`` minus ``reference``, paired by seed, with its 95% interval. Only
    shared seeds count: a variant is compared with its own reference runs, never unpaired."""
    a, b = (df.dropna(subset=[metric]).set_index("seed")[metric] for df in (runs, reference))
    shared = a.index.intersection(b.index)
    return difference(a.loc[shared], b.loc[shared])


def _cell(values: pd.Series, scale: float = 100.0) -> str:
    v = values.dropna()
    return mean_std_cell(v.mean(), v.std(ddof=1), len(v), scale) if len(v) else "–"


def _diff_cell(d: Difference) -> str:
    """'+1.2 [-0.3, +2.7] (n=3)': the paired mean difference in points and its 95% interval."""
    if d.n == 0:
        return "–"
    ci = f" [{d.lo * 100:+.1f}, {d.hi * 100:+.1f}]" if d.testable else ""
    return f"{d.mean * 100:+.1f}{ci} (n={d.n})"


def _diff_numbers(d: Difference) -> dict:
    return {"mean": d.mean, "ci_low": d.lo, "ci_high": d.hi, "std": d.spread, "n": d.n}


def _order_budgets(budgets) -> list:
    return sorted(set(budgets), key=lambda b: np.inf if pd.isna(b) else float(b))


def ablations_table(res: Results, weighting: str = "sample") -> Table:
    caption = (f"BrainCL ablations, accuracy (%, {weighting}-weighted), forgetting (pp) and the difference from "
               "full BrainCL at the same budget and seed (Δ, percentage points: mean of the per-seed differences "
               "[95% paired t interval]); mean ± std over seeds (n = seeds).")
    runs = plain_protocol(res.runs)
    # a longer schedule is not an ablation: it has its own table (training_length_table)
    runs = runs[(runs["method"] == "braincl") & ~runs["variant"].isin(TRAINING_VARIANTS)]
    if runs.empty or not (runs["variant"] != "").any():
        return Table("ablations", caption, pd.DataFrame(),
                     note="no data: no BrainCL ablation runs; run `snakemake --cores 2 ablations`")
    avg, last = f"avg_acc_{weighting}", f"last_acc_{weighting}"
    variants = [v for v in ABLATIONS if v in set(runs["variant"])] + sorted(set(runs["variant"]) - set(ABLATIONS))
    rows, numbers, index = [], [], []
    for dataset in sorted(runs["dataset"].unique()):
        for budget in _order_budgets(runs.loc[runs["dataset"] == dataset, "budget_bytes"]):
            at = runs[(runs["dataset"] == dataset) & (runs["budget_bytes"] == budget)]
            full = at[at["variant"] == ""]
            for v in variants:
                sub = at[at["variant"] == v]
                if sub.empty:
                    continue
                row = {"setting": ABLATIONS.get(v, v), "avg": _cell(sub[avg]), "last": _cell(sub[last]),
                       "forgetting": _cell(sub["forgetting"])}
                for name, metric in (("Δ avg", avg), ("Δ last", last)):
                    if not v:
                        row[name] = "reference"
                        continue
                    d = paired_difference(sub, full, metric)
                    row[name] = _diff_cell(d)
                    numbers.append({"dataset": dataset, "budget_bytes": budget, "variant": v,
                                    "metric": f"delta_{metric}", **_diff_numbers(d)})
                for metric in (avg, last, "forgetting"):
                    numbers.append({"dataset": dataset, "budget_bytes": budget, "variant": v or "full",
                                    "metric": metric, "mean": sub[metric].mean(), "std": sub[metric].std(ddof=1),
                                    "n": int(sub[metric].notna().sum())})
                rows.append(row)
                index.append((dataset, budget_label(budget), v or "full"))
    cells = pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["dataset", "budget", "variant"]))
    notes = ["A variant missing at a budget did not run there (e.g. fp32 decoders do not fit the smallest budget)."]
    return Table("ablations", caption, cells, None, pd.DataFrame(numbers), notes=notes)


def controls_table(res: Results, weighting: str = "sample") -> Table:
    caption = (f"Controls at equal bytes and equal training: average and last accuracy (%, {weighting}-weighted), "
               "mean ± std over seeds (n), and the mean long-term-memory items per class after the last task where "
               "the record has them (BrainCL's cue quota, JPEG replay's exemplars).")
    runs = plain_protocol(res.runs)
    wanted = {(m, v) for m, v, _ in CONTROLS}
    wanted_rows = pd.Series([(m, v) in wanted for m, v in zip(runs["method"], runs["variant"])], index=runs.index)
    runs = runs[wanted_rows & runs["budget_bytes"].notna()]
    has_variant = (runs["variant"] != "").any()
    if runs.empty or not has_variant:
        return Table("controls", caption, pd.DataFrame(),
                     note="no data: no control runs (er+balanced, braincl+raw, braincl+jpeg, derpp+fixedhead); run "
                          "`snakemake --cores 2 controls`")
    avg, last = f"avg_acc_{weighting}", f"last_acc_{weighting}"
    rows, index, numbers = [], [], []
    for dataset in sorted(runs["dataset"].unique()):
        for budget in _order_budgets(runs.loc[runs["dataset"] == dataset, "budget_bytes"]):
            at = runs[(runs["dataset"] == dataset) & (runs["budget_bytes"] == budget)]
            for method, v, what in CONTROLS:
                sub = at[(at["method"] == method) & (at["variant"] == v)]
                if sub.empty:
                    continue
                ltm = sub["ltm_per_class"].dropna()
                rows.append({"what": what, "avg": _cell(sub[avg]), "last": _cell(sub[last]),
                             "LTM items/class": f"{ltm.mean():.1f}" if len(ltm) else "n/a"})
                index.append((dataset, budget_label(budget), f"{method}+{v}" if v else method))
                for metric in (avg, last, "ltm_per_class"):
                    numbers.append({"dataset": dataset, "budget_bytes": budget, "method": method, "variant": v,
                                    "metric": metric, "mean": sub[metric].mean(), "std": sub[metric].std(ddof=1),
                                    "n": int(sub[metric].notna().sum())})
    cells = pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["dataset", "budget", "run"]))
    return Table("controls", caption, cells, None, pd.DataFrame(numbers))


def training_settings(res: Results) -> pd.DataFrame:
    """Plain-protocol runs of the default grid ("" variant) and of its training-length variants, with
    ``backbone_per_task`` (samples back-propagated through the backbone per task)."""
    runs = plain_protocol(res.runs)
    runs = runs[runs["variant"].isin(("",) + TRAINING_VARIANTS)]
    return runs.assign(backbone_per_task=runs["training_backbone_backward"] / runs["num_tasks"])


def _epochs_label(sub: pd.DataFrame) -> str:
    e = sub["epochs"].dropna().unique()
    return f"{int(e[0])} ep" if len(e) == 1 else ("? ep" if len(e) == 0 else "mixed ep")


def training_length_table(res: Results, weighting: str = "sample") -> Table:
    caption = (f"The default grid at two training lengths: last and average accuracy (%, {weighting}-weighted), "
               "mean ± std over seeds (n), the per-seed paired difference of the longer schedule (Δ, percentage "
               "points, with its 95% paired t interval), each method's rank by last accuracy among the methods with a memory budget, and the "
               "samples back-propagated through the backbone per task (thousands). Every method, BrainCL's wake "
               "and sleep included, follows train.epochs; BrainCL's codec training (encoding) does not change.")
    runs = training_settings(res)
    longer = runs[runs["variant"] != ""]
    if longer.empty:
        return Table("training_length", caption, pd.DataFrame(),
                     note="no data: no runs at a second training length; run `snakemake --cores 2 training_length`")
    avg, last = f"avg_acc_{weighting}", f"last_acc_{weighting}"
    rows, index, numbers, notes = [], [], [], []
    for variant in sorted(longer["variant"].unique()):
        for dataset in sorted(longer.loc[longer["variant"] == variant, "dataset"].unique()):
            at_d = runs[runs["dataset"] == dataset]
            methods_long = set(at_d.loc[at_d["variant"] == variant, "method"])
            for budget in _order_budgets(at_d.loc[at_d["variant"] == variant, "budget_bytes"]):
                at = at_d[(at_d["budget_bytes"] == budget).fillna(False) if pd.notna(budget) else at_d["budget_bytes"].isna()]
                base, long_ = at[at["variant"] == ""], at[at["variant"] == variant]
                methods = [m for m in dict.fromkeys(base["method"]) if m in methods_long and m in set(long_["method"])]
                if not methods:
                    continue
                e0, e1 = _epochs_label(base[base["method"].isin(methods)]), _epochs_label(long_)
                ranked = pd.notna(budget) and len(methods) > 1
                vals = {name: {m: df.loc[df["method"] == m].set_index("seed")[last] for m in methods}
                        for name, df in (("base", base), ("long", long_))}
                rank0 = {m: i + 1 for i, m in enumerate(ranking(vals["base"]))} if ranked else {}
                rank1 = {m: i + 1 for i, m in enumerate(ranking(vals["long"]))} if ranked else {}
                for method in sorted(methods, key=lambda m: (rank0.get(m, 0), m)):
                    b, lg = base[base["method"] == method], long_[long_["method"] == method]
                    upd = lambda df: df["backbone_per_task"].dropna()  # noqa: E731
                    row = {f"last, {e0}": _cell(b[last]), f"last, {e1}": _cell(lg[last]),
                           "Δ last": _diff_cell(paired_difference(lg, b, last)),
                           f"avg, {e0}": _cell(b[avg]), f"avg, {e1}": _cell(lg[avg]),
                           "rank (last)": f"{rank0[method]} → {rank1[method]}" if ranked else "–",
                           "backbone k/task": (f"{upd(b).mean() / 1e3:.2f} → {upd(lg).mean() / 1e3:.2f}"
                                               if len(upd(b)) and len(upd(lg)) else "n/a")}
                    rows.append(row)
                    index.append((dataset, budget_label(budget), variant, method))
                    for setting, df in (("", b), (variant, lg)):
                        for metric in (avg, last, "backbone_per_task"):
                            numbers.append({"dataset": dataset, "budget_bytes": budget, "method": method,
                                            "variant": setting, "epochs": df["epochs"].mean(), "metric": metric,
                                            "mean": df[metric].mean(), "std": df[metric].std(ddof=1),
                                            "n": int(df[metric].notna().sum()),
                                            "rank_last": (rank0 if setting == "" else rank1).get(method)})
                if ranked:
                    notes.append(_ranking_note(dataset, budget, e0, e1, vals))
    cells = pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["dataset", "budget", "variant", "run"]))
    notes.append("Ranks count the methods with a memory budget at that budget; finetune and joint (no budget) are "
                 "shown for reference. A flip is 'beyond noise' when the paired 95% interval of the difference "
                 "(by seed) excludes zero in both settings.")
    return Table("training_length", caption, cells, None, pd.DataFrame(numbers), notes=notes)


def _ranking_note(dataset, budget, e0: str, e1: str, vals: dict) -> str:
    order0, order1 = ranking(vals["base"]), ranking(vals["long"])
    flips = order_flips(vals["base"], vals["long"])
    head = (f"{dataset}, {budget_label(budget)}: {e0} {' > '.join(order0)}; {e1} {' > '.join(order1)}; "
            f"Kendall tau {kendall_tau(len(order0), len(flips)):+.2f}")
    if not flips:
        return head + "; the ranking holds."
    said = []
    for f in flips:
        noise = "beyond noise" if f.resolved else "within noise"
        said.append(f"{f.second} passes {f.first} ({f.first} − {f.second}: {f.before.mean * 100:+.1f} → "
                    f"{-f.after.mean * 100:+.1f} pp, {noise})")
    return head + "; " + "; ".join(said) + "."


def curve_stats(res: Results, weighting: str = "sample", metric: str = "avg") -> pd.DataFrame:
    """Mean, std and n of ``metric`` accuracy per dataset, method and budget (plain runs with a budget)."""
    runs = res.runs[res.runs["main"] & res.runs["budget_bytes"].notna()]
    col = f"{metric}_acc_{weighting}"
    g = runs.groupby(["dataset", "method", "budget_bytes"])[col]
    return g.agg(mean="mean", std=lambda s: s.std(ddof=1), n="count").reset_index()


def crossing_summary(st: pd.DataFrame, dataset: str, highlight: str = HIGHLIGHT) -> tuple[list[str], pd.DataFrame]:
    """Sentences saying where ``highlight``'s curve crosses each other method's and the best one's,
    and per budget the leader. Only budgets where ``highlight`` ran count."""
    from braincl.units import format_bytes

    sub = st[st["dataset"] == dataset]
    mine = sub[sub["method"] == highlight].set_index("budget_bytes")["mean"]
    others = sub[sub["method"] != highlight]
    if mine.empty or others.empty:
        return [f"{dataset}: no {highlight} runs with a budget beside baselines."], pd.DataFrame()
    wide = others.pivot(index="budget_bytes", columns="method", values="mean").reindex(mine.index)
    best = wide.max(axis=1)
    lead = pd.DataFrame({"budget_bytes": mine.index, highlight: mine.values, "best_other": best.values,
                         "best_other_method": wide.idxmax(axis=1).values, "lead": (mine - best).values})
    fmt = lambda b: format_bytes(int(round(b)))  # noqa: E731
    out = []
    budgets = list(mine.index.astype(float))
    led = lead["lead"] > 0
    where = ", ".join(fmt(b) for b in lead.loc[led, "budget_bytes"])
    if not led.any():
        out.append(f"{dataset}: {highlight} never leads: at every budget ({', '.join(fmt(b) for b in budgets)}) "
                   "a baseline is ahead.")
    elif led.all():
        out.append(f"{dataset}: {highlight} leads at every budget ({where}).")
    else:
        out.append(f"{dataset}: {highlight} leads at {where} only.")
    for lo, hi, x in crossings(budgets, lead["lead"].values):
        out.append(f"{dataset}: {highlight} and the best baseline cross between {fmt(lo)} and {fmt(hi)} "
                   f"(about {fmt(x)}, log-linear).")
    for method in wide.columns:
        for lo, hi, x in crossings(budgets, (mine - wide[method]).values):
            out.append(f"{dataset}: {highlight} and {method} cross between {fmt(lo)} and {fmt(hi)} (about {fmt(x)}).")
    return out, lead


def memory_accuracy_table(res: Results, weighting: str = "sample") -> Table:
    caption = (f"Memory-accuracy curve: average accuracy (%, {weighting}-weighted) per budget, mean ± std over "
               "seeds; best per budget in bold; the notes say where BrainCL's curve crosses the baselines'.")
    st = curve_stats(res, weighting)
    st = st[st["method"].isin(CURVE_METHODS)]
    if st.empty or st["budget_bytes"].nunique() < 2:
        return Table("memory_accuracy", caption, pd.DataFrame(),
                     note="no data: fewer than two budgets; run `snakemake --cores 2 budget_curve`")
    rows, index, notes = [], [], []
    for dataset in sorted(st["dataset"].unique()):
        sentences, _ = crossing_summary(st, dataset)
        notes += sentences
        sub = st[st["dataset"] == dataset]
        for budget in _order_budgets(sub["budget_bytes"]):
            at = sub[sub["budget_bytes"] == budget].set_index("method")
            rows.append({m: (mean_std_cell(at.at[m, "mean"], at.at[m, "std"], int(at.at[m, "n"]))
                             if m in at.index else "–") for m in CURVE_METHODS})
            index.append((dataset, budget_label(budget)))
    cells = pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["dataset", "budget"]))
    best = st.assign(shown=(st["mean"] * 100).round(1))
    best = best.groupby(["dataset", "budget_bytes"])["shown"].transform("max") == best["shown"]
    bold = pd.DataFrame(False, index=cells.index, columns=cells.columns)
    for (dataset, budget, method), is_best in zip(st[["dataset", "budget_bytes", "method"]].itertuples(index=False),
                                                  best):
        if is_best:
            bold.loc[(dataset, budget_label(budget)), method] = True
    return Table("memory_accuracy", caption, cells, bold, st.assign(weighting=weighting), notes=notes)
