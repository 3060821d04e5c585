"""Paper-style tables from the loaded run records. Every number is a mean ± std over seeds (sample
standard deviation, ddof=1) with the number of seeds shown; accuracies and AUROC are in percent,
forgetting and BWT in percentage points. The best cell of each column within a budget is bold;
upper-bound methods (joint training) are shown but never bolded, because they are not competitors.

Metrics follow PROTOCOLS.md: average incremental accuracy (mean of A_t over tasks), last accuracy
A_T, forgetting (Chaudhry et al. 2018) and BWT (Lopez-Paz & Ranzato 2017)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from braincl.units import parse_bytes

from .load import MAIN_PROTOCOL, Results, main_keys
from .outputs import UPPER_BOUNDS
from .render import Table, budget_label, mean_std_cell
from .stats import effective_rank, top_k_share

PAPER_NUMBERS = Path(__file__).with_name("paper_numbers.csv")
WEIGHTING_WORDS = {"sample": "sample-weighted (A_t pools all seen test samples)",
                   "task": "task-weighted (A_t is the mean of the seen tasks' accuracies)"}


def paper_numbers(path: str | Path = PAPER_NUMBERS) -> pd.DataFrame:
    """Numbers a paper reports (percent), keyed like our runs. Columns: dataset, method, budget,
    metric (avg_acc | last_acc | auroc_msp | auroc_energy), value, source."""
    df = pd.read_csv(path, comment="#")
    missing = {"dataset", "method", "budget", "metric", "value", "source"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    df["budget_bytes"] = [parse_bytes(b) for b in df["budget"]]
    return df


def stats(df: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    g = df.groupby(by, dropna=False)[value]
    out = g.agg(mean="mean", std=lambda s: s.std(ddof=1), n="count").reset_index()
    return out[out["n"] > 0]


def _order(df: pd.DataFrame) -> pd.DataFrame:
    """Budgets ascending (no budget last); methods alphabetical with upper bounds last."""
    df = df.copy()
    df["_b"] = df["budget_bytes"].astype("Float64").fillna(np.inf)
    df["_m"] = [(m in UPPER_BOUNDS, m) for m in df["method"]]
    return df.sort_values(["_b", "_m"], kind="stable").drop(columns=["_b", "_m"])


def grid(st: pd.DataFrame, column: str, higher_better: bool, scale: float = 100.0, block: str = "budget_bytes",
         row_keys=("budget_bytes", "method"), extra=None):
    """Pivot tidy stats (mean, std, n, and ``column`` holding the header) into text cells and a
    bold mask. The best rounded mean of each column within each ``block`` is bold (ties all bold)."""
    st = _order(st)
    st["cell"] = [mean_std_cell(m, s, int(n), scale) + (extra(r) if extra else "")
                  for (m, s, n), (_, r) in zip(st[["mean", "std", "n"]].itertuples(index=False), st.iterrows())]
    st["shown"] = (st["mean"] * scale).round(1)
    contender = ~st["method"].isin(UPPER_BOUNDS)
    best = st[contender].groupby([block, column], dropna=False)["shown"].transform("max" if higher_better else "min")
    st["bold"] = False
    st.loc[contender, "bold"] = st.loc[contender, "shown"] == best
    labels = {k: [budget_label(v) if k == "budget_bytes" else v for v in st[k]] for k in row_keys}
    st["_row"] = list(zip(*labels.values()))
    rows = list(dict.fromkeys(st["_row"]))
    cols = list(dict.fromkeys(st[column]))
    cells = st.pivot_table(index="_row", columns=column, values="cell", aggfunc="first").reindex(index=rows, columns=cols)
    bold = st.pivot_table(index="_row", columns=column, values="bold", aggfunc="first").reindex(index=rows, columns=cols)
    names = ["budget" if k == "budget_bytes" else k for k in row_keys]
    cells.index = pd.MultiIndex.from_tuples(rows, names=names)
    bold.index = cells.index
    cells.columns.name = bold.columns.name = None
    return cells, _as_bool(bold)


def _as_bool(df: pd.DataFrame) -> pd.DataFrame:
    """Missing cells (a method without that column) are not bold."""
    return df.apply(lambda col: col.map(lambda v: bool(v) if pd.notna(v) else False))


def _no_data(name: str, caption: str, why: str) -> Table:
    return Table(name, caption, pd.DataFrame(), note=f"no data: {why}")


def main_table(res: Results, weighting: str = "sample", paper: pd.DataFrame | None = None) -> Table:
    """Average and last accuracy per data set and method at each budget, beside the paper's numbers."""
    caption = (f"Average incremental and last accuracy (%), {WEIGHTING_WORDS[weighting]}, plain class-incremental "
               "runs (no long tail, no held-out classes); "
               "mean ± std over seeds (n = number of seeds); best per column and budget in bold; "
               "[paper x, Δ d] is the number the paper reports and ours minus it.")
    runs = res.runs[res.runs["main"]]
    if runs.empty:
        return _no_data("main", caption, f"no plain '{MAIN_PROTOCOL}' runs")
    long = runs.melt(id_vars=["dataset", "method", "budget_bytes", "seed"],
                     value_vars=[f"avg_acc_{weighting}", f"last_acc_{weighting}"], var_name="metric")
    long["metric"] = long["metric"].str.replace(f"_{weighting}", "", regex=False)
    st = stats(long, ["dataset", "budget_bytes", "method", "metric"], "value")
    paper = paper_numbers() if paper is None else paper
    st = st.merge(paper[["dataset", "method", "budget_bytes", "metric", "value"]].rename(columns={"value": "paper"}),
                  on=["dataset", "method", "budget_bytes", "metric"], how="left")
    st["paper"] = st["paper"] / 100  # the CSV keeps every accuracy as a fraction, like the records
    st["diff"] = st["mean"] - st["paper"]
    st["header"] = st["dataset"] + " " + st["metric"].map({"avg_acc": "avg", "last_acc": "last"})
    def beside_paper(r) -> str:
        return "" if pd.isna(r["paper"]) else f" [paper {r['paper'] * 100:.1f}, Δ {r['diff'] * 100:+.1f}]"

    cells, bold = grid(st, "header", True, extra=beside_paper)
    numbers = st.drop(columns=["header"]).assign(weighting=weighting)
    comp_cells, comp_numbers = compute_cells(runs, cells.index)
    if comp_cells is not None:
        cells = pd.concat([cells, comp_cells], axis=1)
        bold = pd.concat([bold, comp_cells.map(lambda _: False)], axis=1)
        numbers = pd.concat([numbers, comp_numbers], ignore_index=True)
    teacher = teacher_cells(runs, cells.index)
    if teacher is not None:
        cells = pd.concat([cells, teacher], axis=1)
        bold = pd.concat([bold, teacher.map(lambda _: False)], axis=1)
        caption += " " + TEACHER_WORDS
    table = Table("main", caption + " " + COMPUTE_WORDS, cells, _as_bool(bold), numbers)
    return table


TEACHER_WORDS = ("teacher KB: the frozen copy of the previous model a distillation method keeps (mean over seeds), "
                 "reported beside the budget and not charged against it unless memory.charge_teacher is true.")


def teacher_cells(runs: pd.DataFrame, index: pd.MultiIndex):
    """The teacher's bytes (KB) of each (budget, method) row, one column per data set, "–" for a
    method that keeps none; None when no run keeps a teacher."""
    if not (runs["teacher_bytes"].fillna(0) > 0).any():
        return None
    st = runs.groupby(["dataset", "budget_bytes", "method"], dropna=False)["teacher_bytes"].mean().reset_index()
    parts = [pd.Series({(budget_label(b), m): (f"{v / 1e3:,.0f}" if v > 0 else "–")
                        for b, m, v in sub[["budget_bytes", "method", "teacher_bytes"]].itertuples(index=False)},
                       name=f"{dataset} teacher KB") for dataset, sub in st.groupby("dataset")]
    cells = pd.concat(parts, axis=1).reindex(index)
    cells.index = index
    return cells.fillna("–")


COMPUTE_WORDS = ("Compute per task, mean over seeds (no std: it barely varies): training GFLOP (every phase "
                 "but memory building; FlopCounterMode on every pass, a step once per batch composition; records "
                 "before schema v4 count a phase's first step times its steps), backbone sample-updates (samples "
                 "back-propagated through the backbone) and encoding GFLOP (building the memory: BrainCL's codec, a "
                 "generator, selection forwards, stored logits, class means, a Fisher); "
                 "n/a: the record predates the compute section (schema v3).")
COMPUTE_COLUMNS = (("training_flops", "train GFLOP/task", 1e-9, "{:.2f}"),
                   ("training_backbone_backward", "backbone updates/task", 1.0, "{:,.0f}"),
                   ("encoding_flops", "encode GFLOP/task", 1e-9, "{:.2f}"))


def compute_cells(runs: pd.DataFrame, index: pd.MultiIndex):
    """Per-task compute of each (budget, method) row of the main table: cells (n/a where the
    records have no compute section) and the tidy numbers."""
    parts, numbers = [], []
    for column, header, scale, fmt in COMPUTE_COLUMNS:
        per_task = runs.assign(value=runs[column] / runs["num_tasks"])
        st = per_task.groupby(["dataset", "budget_bytes", "method"], dropna=False)["value"].agg(
            mean="mean", n="count").reset_index()
        numbers.append(st.assign(metric=f"{column}_per_task"))
        for dataset, sub in st.groupby("dataset"):
            cells = {(budget_label(b), m): ("n/a" if n == 0 or pd.isna(v) else fmt.format(v * scale))
                     for b, m, v, n in sub[["budget_bytes", "method", "mean", "n"]].itertuples(index=False)}
            parts.append(pd.Series(cells, name=f"{dataset} {header}"))
    if not parts:
        return None, None
    cells = pd.concat(parts, axis=1).reindex(index)
    cells.index = index
    return cells.fillna("–"), pd.concat(numbers, ignore_index=True)


def forgetting_table(res: Results) -> Table:
    caption = ("Forgetting (Chaudhry et al. 2018; lower is better) and backward transfer (Lopez-Paz & Ranzato 2017; "
               "higher is better) in percentage points, class-incremental protocol, mean ± std over seeds.")
    runs = res.runs[res.runs["main"]]
    if runs.empty:
        return _no_data("forgetting", caption, f"no plain '{MAIN_PROTOCOL}' runs")
    parts = []
    for metric, higher in (("forgetting", False), ("bwt", True)):
        st = stats(runs, ["dataset", "budget_bytes", "method"], metric)
        st["header"] = st["dataset"] + " " + metric.replace("bwt", "BWT")
        parts.append((st.assign(metric=metric), higher))
    cells_list, bold_list = zip(*[grid(st, "header", higher) for st, higher in parts])
    cells, bold = pd.concat(cells_list, axis=1), pd.concat(bold_list, axis=1)
    order = sorted(cells.columns, key=lambda c: (c.rsplit(" ", 1)[0], c.endswith("BWT")))
    numbers = pd.concat([st for st, _ in parts]).drop(columns=["header"])
    return Table("forgetting", caption, cells[order], _as_bool(bold[order]), numbers)


def unknown_table(res: Results) -> Table:
    caption = ("Unknown-class detection: AUROC (%) of known vs held-out classes with the final model, scored by "
               "maximum softmax probability (MSP) and energy; mean ± std over seeds; best in bold.")
    unknown = res.unknown[res.unknown["variant"] == ""]
    if unknown.empty:
        return _no_data("unknown_auroc", caption, "no run has protocols.unknown_classes with AUROC values")
    st = stats(unknown, ["dataset", "budget_bytes", "method", "score"], "auroc")
    st = st.sort_values(["dataset", "score"], key=lambda c: c.map({"msp": 0}).fillna(1) if c.name == "score" else c,
                        kind="stable")  # MSP first, as in the paper
    st["header"] = st["dataset"] + " " + st["score"].str.upper().str.replace("ENERGY", "energy")
    cells, bold = grid(st, "header", True)
    return Table("unknown_auroc", caption, cells, bold, st.drop(columns=["header"]))


def robustness_table(res: Results, weighting: str = "sample") -> Table:
    """Covariate shift: accuracy averaged over corruptions at each severity (clean as severity 0).
    Long tail: average and last accuracy of the runs trained on long-tailed tasks."""
    caption = ("Robustness, accuracy (%), mean ± std over seeds. Covariate shift: final-model accuracy on corrupted "
               "test sets of all seen classes, averaged over corruption types, per severity. Long tail: average and "
               f"last accuracy ({WEIGHTING_WORDS[weighting]}) of runs trained on long-tailed tasks.")
    parts = []
    cs = res.covariate_shift[res.covariate_shift["variant"] == ""]
    if not cs.empty:
        per_run = cs.groupby([*KEYS_NO_SEED, "seed", "severity"], dropna=False)["accuracy"].mean().reset_index()
        st = stats(per_run, ["dataset", "budget_bytes", "method", "severity"], "accuracy")
        st["header"] = st["dataset"] + " " + np.where(st["severity"] == 0, "clean", "shift s" + st["severity"].astype(str))
        parts.append(st.assign(kind="covariate_shift"))
    lt = res.runs[res.runs["long_tail"] & (res.runs["variant"] == "")]
    for metric in (f"avg_acc_{weighting}", f"last_acc_{weighting}"):
        if not lt.empty:
            st = stats(lt.assign(rho=lt["rho"].fillna(-1)), ["dataset", "budget_bytes", "method", "rho"], metric)
            rho = ["" if r < 0 else f" ρ={r:g}" for r in st["rho"]]
            st["header"] = st["dataset"] + " long-tail" + pd.Series(rho, index=st.index) + " " + metric.split("_")[0]
            parts.append(st.assign(kind="long_tail", metric=metric))
    if not parts:
        return _no_data("robustness", caption, "no covariate-shift results and no long-tailed runs")
    st = pd.concat(parts, ignore_index=True)
    cells, bold = grid(st, "header", True)
    return Table("robustness", caption, cells, bold, st.drop(columns=["header"]))


def classwise_table(res: Results) -> Table:
    caption = ("Class-wise spread after the last task, class-incremental protocol: standard deviation and range "
               "(max − min) of per-class accuracy over all classes (percentage points; lower is more even), "
               "mean ± std over seeds.")
    pc = res.per_class.merge(main_keys(res), on=list(main_keys(res).columns))
    if pc.empty:
        return _no_data("classwise_spread", caption, "no run recorded accuracy.per_class")
    last = pc[pc["after_task"] == pc.groupby(KEYS_NO_SEED + ["seed"], dropna=False)["after_task"].transform("max")]
    spread = last.groupby(KEYS_NO_SEED + ["seed"], dropna=False)["accuracy"].agg(
        std=lambda s: s.std(ddof=0), range=lambda s: s.max() - s.min()).reset_index()
    parts = []
    for metric, label in (("std", "std"), ("range", "max−min")):
        st = stats(spread, ["dataset", "budget_bytes", "method"], metric)
        st["header"] = st["dataset"] + " " + label
        parts.append(st.assign(metric=metric))
    st = pd.concat(parts, ignore_index=True)
    cells, bold = grid(st, "header", False)
    return Table("classwise_spread", caption, cells, bold, st.drop(columns=["header"]))


KEYS_NO_SEED = ["dataset", "protocol", "method", "variant", "budget_bytes"]


def spectra_stats(res: Results) -> pd.DataFrame:
    """Effective rank and top-5 variance share of each plain run's final feature spectrum."""
    sp = res.spectra.merge(main_keys(res), on=list(main_keys(res).columns))
    rows = []
    for key, g in sp.groupby(KEYS_NO_SEED + ["seed"], dropna=False, sort=True):
        ev = g.sort_values("index")["eigenvalue"].tolist()
        rows.append({**dict(zip(KEYS_NO_SEED + ["seed"], key)), "effective_rank": effective_rank(ev),
                     "top5_share": top_k_share(ev, 5)})
    return pd.DataFrame(rows, columns=KEYS_NO_SEED + ["seed", "effective_rank", "top5_share"])


def spectra_table(res: Results) -> Table:
    caption = ("Feature spectra after the last task, plain class-incremental runs: effective rank of the feature "
               "covariance (exp of the entropy of its normalised eigenvalues, Roy & Vetterli 2007; a collapsed "
               "feature space has a small one; higher in bold) and the share of variance in the top 5 eigenvalues "
               "(%), mean ± std over seeds.")
    per_run = spectra_stats(res)
    if per_run.empty:
        return _no_data("feature_spectra", caption, "no run recorded analysis.feature_spectrum")
    parts = []
    for metric, label, scale in (("effective_rank", "effective rank", 1.0), ("top5_share", "top-5 share", 100.0)):
        st = stats(per_run, ["dataset", "budget_bytes", "method"], metric)
        st["header"] = st["dataset"] + " " + label
        parts.append((st.assign(metric=metric), scale))
    cells_list, bold_list = zip(*[grid(st, "header", metric_higher, scale=scale)
                                  for (st, scale), metric_higher in zip(parts, (True, False))])
    cells, bold = pd.concat(cells_list, axis=1), pd.concat(bold_list, axis=1)
    numbers = pd.concat([st for st, _ in parts]).drop(columns=["header"])
    return Table("feature_spectra", caption, cells, _as_bool(bold), numbers)


def all_tables(res: Results, weighting: str = "sample") -> list[Table]:
    from .variants import ablations_table, controls_table, memory_accuracy_table, training_length_table

    return [main_table(res, weighting), forgetting_table(res), unknown_table(res), robustness_table(res, weighting),
            classwise_table(res), spectra_table(res), ablations_table(res, weighting), controls_table(res, weighting),
            training_length_table(res, weighting), memory_accuracy_table(res, weighting)]
