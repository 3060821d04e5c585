"""Ours against a published table: Seq-MNIST, class-IL, of Buzzega et al., "Dark Experience for
General Continual Learning" (NeurIPS 2020), Table 2 (Mammoth).

    python -m analysis.reference --runs results/runs/seq-mnist/der2020 --out results/tables

Reads every ``metrics.json`` under ``--runs`` and writes ``reference_seq_mnist.{md,csv,tex}``.
The compared number is Mammoth's class-IL accuracy: after the last task, the mean over tasks of
each task's test accuracy (``summary.last_acc_task``). A buffer of N exemplars is the byte budget of
N raw exemplars (784 B uint8 pixels + 2 B label = 786 B each).

Tolerance: both groups' spread. A cell is within when the 95% Welch interval of ours - published
(ours: mean and std over n seeds; published: mean and std over the paper's 10 runs) contains 0,
i.e. Welch's t-test (``scipy.stats.ttest_ind_from_stats``, unequal variances) does not tell the two
apart at the 5% level. Each row also lists the other published methods at the same buffer that its
runs would match by the same rule (``also_matches``): where that list is not empty, the reference
cannot tell those methods apart.

Which runs' hyperparameters are Mammoth's is checked apart, against
``config/experiments/reference/mammoth_best_args_seq_mnist.yaml`` (``best_args_mismatches``)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
from pathlib import Path

import numpy as np
from scipy import stats

BYTES_PER_EXEMPLAR = 28 * 28 + 2
BUFFERS = (200, 500, 5120)
# Buzzega et al. (2020), Section 4: every number of Table 2 is a mean over ten runs.
PUBLISHED_RUNS = 10
CONFIDENCE = 0.95
# (method in this suite, row name in the paper) -> {buffer or None: (mean, std)}; Table 2, Seq-MNIST, Class-IL.
PUBLISHED = {
    ("joint", "JOINT"): {None: (95.57, 0.24)},
    ("finetune", "SGD"): {None: (19.60, 0.04)},
    ("ewc", "oEWC"): {None: (20.46, 1.01)},
    ("lwf", "LwF"): {None: (19.62, 0.01)},
    ("er", "ER"): {200: (80.43, 1.89), 500: (86.12, 1.89), 5120: (93.40, 1.29)},
    ("icarl", "iCaRL"): {200: (70.51, 0.53), 500: (70.10, 1.08), 5120: (70.60, 1.03)},
    ("der", "DER"): {200: (84.55, 1.64), 500: (90.54, 1.18), 5120: (94.90, 0.57)},
    ("derpp", "DER++"): {200: (85.61, 1.40), 500: (91.00, 1.49), 5120: (95.30, 0.20)},
    ("braincl", "BrainCL (not in the paper)"): {200: None, 500: None, 5120: None},
}
# Runs of a variant (config.variant) that change one choice of ours, shown under the paper's row of the
# same method and compared with the same published number; they are not counted as reproductions.
VARIANT_ROWS = {("der", "growhead"): "DER, growing head", ("derpp", "growhead"): "DER++, growing head",
                ("icarl", "halvingmeans"): "iCaRL, Mammoth's running-halving means"}
COLUMNS = ["method", "variant", "buffer", "budget_bytes", "ours_mean", "ours_std", "n", "published_mean", "published_std",
           "published_n", "difference", "ci_low", "ci_high", "welch_df", "p_value", "within", "also_matches",
           "train_s_mean", "note"]
BEST_ARGS = Path(__file__).resolve().parents[1] / "config/experiments/reference/mammoth_best_args_seq_mnist.yaml"


def welch(ours, published_mean: float, published_std: float, published_n: int = PUBLISHED_RUNS,
          confidence: float = CONFIDENCE) -> dict | None:
    """Welch's interval for mean(ours) - published_mean, from our per-seed values and the published
    mean, std and run count: the difference, its ``confidence`` interval (Student's t with the
    Welch-Satterthwaite degrees of freedom), the degrees of freedom and the two-sided p-value of
    Welch's t-test. None with fewer than two of ours (no spread to use)."""
    ours = np.asarray(ours, dtype=float)
    n = len(ours)
    if n < 2:
        return None
    mean, std = float(ours.mean()), float(ours.std(ddof=1))
    diff = mean - published_mean
    v_ours, v_pub = std ** 2 / n, published_std ** 2 / published_n
    if v_ours + v_pub == 0.0:  # no spread in either group: only an exact match is within
        return {"difference": diff, "ci_low": diff, "ci_high": diff, "welch_df": math.inf,
                "p_value": 1.0 if diff == 0.0 else 0.0}
    df = (v_ours + v_pub) ** 2 / (v_ours ** 2 / (n - 1) + v_pub ** 2 / (published_n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * math.sqrt(v_ours + v_pub)
    p = float(stats.ttest_ind_from_stats(mean, std, n, published_mean, published_std, published_n,
                                         equal_var=False).pvalue)
    return {"difference": diff, "ci_low": diff - half, "ci_high": diff + half, "welch_df": df, "p_value": p}


def within(ours, published_mean: float, published_std: float, published_n: int = PUBLISHED_RUNS) -> bool | None:
    """Ours and the published cell are not told apart: the Welch interval contains 0."""
    w = welch(ours, published_mean, published_std, published_n)
    return None if w is None else w["ci_low"] <= 0.0 <= w["ci_high"]


def also_matches(ours, method: str, buffer) -> list[str]:
    """The other published rows at the same buffer (None: the rows without one) that ``ours`` would
    match by the same rule."""
    return [name for (m, name), published in PUBLISHED.items()
            if m != method and published.get(buffer) is not None and within(ours, *published[buffer])]


def buffer_of(budget_bytes) -> int | None:
    if budget_bytes is None:
        return None
    n, rest = divmod(int(budget_bytes), BYTES_PER_EXEMPLAR)
    return n if rest == 0 else None


def load_runs(runs: Path) -> dict:
    """(method, variant, buffer) -> list of (accuracy %, train seconds), one per seed ("" for a plain
    run; variants other than ``VARIANT_ROWS`` are skipped). A run without a budget, or of a method
    that keeps none, counts as "no buffer" (None)."""
    cells: dict = {}
    for path in sorted(runs.rglob("metrics.json")):
        record = json.loads(path.read_text())
        method = record["run"]["method"]
        variant = record["config"].get("variant") or ""
        if variant and (method, variant) not in VARIANT_ROWS:
            continue
        no_buffer = any(m == method and None in cells_ for (m, _), cells_ in PUBLISHED.items())
        buffer = None if no_buffer else buffer_of(record["run"]["budget_bytes"])
        if not no_buffer and buffer is None:
            raise SystemExit(f"{path}: budget {record['run']['budget_bytes']} B is not a whole number of "
                             f"{BYTES_PER_EXEMPLAR} B exemplars; the reference table compares exemplar counts")
        train_s = sum(t["train_s"] for t in record["timings"]["per_task"])
        cells.setdefault((method, variant, buffer), []).append(
            (100.0 * record["summary"]["last_acc_task"], train_s, _schedule(record)))
    return cells


def _schedule(record: dict) -> str | None:
    """JOINT's training schedule (``method_info.schedule``; records from before the option retrained
    at every task); None for other methods."""
    if record["run"]["method"] != "joint":
        return None
    return (record.get("method_info") or {}).get("schedule", "every_task")


SCHEDULE_NOTES = {
    "final": "trained once on all tasks' data after the last task, as Mammoth's models/joint.py: only the last row "
             "of its accuracy matrix is a measurement (the earlier rows evaluate the untrained network), and only "
             "that row is compared",
    "every_task": "retrained on the union at every task, not Mammoth's schedule (it trains once, at the end)",
}


def rows(cells: dict) -> list[dict]:
    """The paper's rows in its order; each method's variant rows (``VARIANT_ROWS``) follow it."""
    out = []
    for (method, name), published in PUBLISHED.items():
        variants = [("", name)] + [(v, label) for (m, v), label in VARIANT_ROWS.items() if m == method]
        for variant, label in variants:
            for buffer, pub in published.items():
                values = cells.get((method, variant, buffer), [])
                if values or not variant:
                    out.append(_row(label, variant, buffer, pub, values, method))
    return out


def _row(label: str, variant: str, buffer, pub, values: list, method: str = "") -> dict:
    acc = np.asarray([v[0] for v in values], dtype=float)
    row = {"method": label, "variant": variant, "buffer": "-" if buffer is None else buffer,
           "budget_bytes": "-" if buffer is None else buffer * BYTES_PER_EXEMPLAR, "n": len(acc),
           "ours_mean": float(acc.mean()) if len(acc) else math.nan,
           "ours_std": float(acc.std(ddof=1)) if len(acc) > 1 else math.nan,
           "train_s_mean": float(np.mean([v[1] for v in values])) if values else math.nan,
           "published_mean": math.nan, "published_std": math.nan, "published_n": "-", "difference": math.nan,
           "ci_low": math.nan, "ci_high": math.nan, "welch_df": math.nan, "p_value": math.nan, "within": "",
           "also_matches": "", "note": ""}
    schedules = sorted({v[2] for v in values if len(v) > 2 and v[2] is not None})
    if len(schedules) > 1:
        raise SystemExit(f"{label}: runs with different schedules ({', '.join(schedules)}) in one cell; rerun them "
                         "with one schedule")
    if schedules:
        row["note"] = SCHEDULE_NOTES[schedules[0]]
    if len(acc) > 1:
        row["also_matches"] = ", ".join(also_matches(acc, method, buffer)) or "none"
    if pub is not None:
        row["published_mean"], row["published_std"] = pub
        row["published_n"] = PUBLISHED_RUNS
        if len(acc):
            row["difference"] = row["ours_mean"] - pub[0]
        w = welch(acc, *pub)
        if w is not None:
            row.update(w)
            row["within"] = "yes" if w["ci_low"] <= 0.0 <= w["ci_high"] else "no"
    return row


def load_best_args(path: Path = BEST_ARGS) -> dict:
    import yaml

    return yaml.safe_load(Path(path).read_text())


_MISSING = object()


def best_args_mismatches(cfg: dict, best: dict | None = None) -> list[str] | None:
    """How a resolved run config departs from Mammoth's ``best_args['seq-mnist']`` for its method and
    buffer (``mammoth_best_args_seq_mnist.yaml``): one line per argument whose value differs or has
    no counterpart, empty when every value matches. None for a method Mammoth's table does not have."""
    from braincl.config import get
    from braincl.units import parse_bytes

    best = best or load_best_args()
    method = cfg["method"]["name"]
    model = best["models"].get(method)
    if model is None:
        return None
    budget = cfg["memory"].get("budget")
    buffer = -1 if -1 in best["best_args"][model] else buffer_of(None if budget is None else parse_bytes(budget))
    if buffer not in best["best_args"][model]:
        return [f"{method}: budget {budget} B is none of best_args' buffers "
                f"{sorted(best['best_args'][model])} x {BYTES_PER_EXEMPLAR} B"]
    values = {**best["defaults"], **best["best_args"][model][buffer]}
    keys = {**best["args"], **best.get("by_model", {}).get(model, {})}
    unused = best.get("unused", {}).get(model, {})
    out = []
    for arg, want in values.items():
        if arg in unused:
            continue
        if arg not in keys:
            out.append(f"{method} {buffer}: Mammoth's {arg} has no counterpart in this suite's config")
            continue
        got = get(cfg, keys[arg], _MISSING)
        if got is _MISSING or not isinstance(got, (int, float)) or not math.isclose(got, want, rel_tol=1e-12):
            out.append(f"{method} {buffer}: {keys[arg]} = {None if got is _MISSING else got!r}, "
                       f"Mammoth's {arg} = {want!r}")
    return out


def reference_jobs(workflow_config: Path, group: str = "reference") -> list[tuple[str, dict]]:
    """Every run of ``targets.<group>`` in the workflow config, resolved as the workflow resolves it
    (workflow/rules/common.smk ``_expand_grid``), one seed each: (run path below the runs folder,
    resolved config)."""
    import yaml

    from braincl import config as bconfig
    from braincl.registry import METHODS

    repo = Path(workflow_config).resolve().parents[1]
    jobs = []
    for entry in yaml.safe_load(Path(workflow_config).read_text())["targets"][group]:
        label, variant = entry.get("label") or entry["dataset"], entry.get("variant")
        base = bconfig.load_yaml(repo / entry["experiment"])
        for method in entry["methods"]:
            for budget in entry["budgets"] if METHODS.get(method).needs_budget else ["none"]:
                sets = [f"{k}={v}" for k, v in (entry.get("set") or {}).items()]
                sets += [f"dataset.name={entry['dataset']}", f"dataset.label={label}", f"protocol={entry['protocol']}",
                         f"method.name={method}", f"seed={entry['seeds'][0]}"]
                if variant:
                    sets.append(f"variant={variant}")
                if budget != "none":
                    sets.append(f"memory.budget={budget}")
                cfg = bconfig.validate(bconfig.resolve(base, sets))
                folder = f"{method}+{variant}" if variant else method
                jobs.append((f"{label}/{entry['protocol']}/{folder}/{budget}", cfg))
    return jobs


def _fmt(x, digits=2):
    return "-" if isinstance(x, float) and math.isnan(x) else (f"{x:.{digits}f}" if isinstance(x, float) else str(x))


def _ours(r) -> str:
    if not r["n"]:
        return "missing"
    return f"{_fmt(r['ours_mean'])} ± {_fmt(r['ours_std'])} (n={r['n']})"


def _published(r) -> str:
    return "-" if math.isnan(r["published_mean"]) else f"{r['published_mean']:.2f} ± {r['published_std']:.2f}"


def _cell(r) -> str:
    return r["method"] if r["buffer"] == "-" else f"{r['method']} {r['buffer']}"


def _interval(r) -> str:
    return "-" if math.isnan(r["ci_low"]) else f"[{r['ci_low']:+.2f}, {r['ci_high']:+.2f}]"


def render_md(table: list[dict]) -> str:
    lines = ["Table: Seq-MNIST, class-IL accuracy (%) after the last task, mean over tasks (Mammoth's metric); "
             "ours mean ± std over seeds (n seeds) against Buzzega et al. (NeurIPS 2020), Table 2 (mean ± std over "
             f"{PUBLISHED_RUNS} runs). Interval: {CONFIDENCE:.0%} Welch interval of ours - published (both groups' "
             "spread); within: it contains 0 (Welch's t-test, p >= 0.05). Also matches: the other published "
             "methods at the same buffer that our runs would match by the same rule. Buffer = exemplars; budget = "
             f"buffer x {BYTES_PER_EXEMPLAR} B.", "",
             "| method | buffer | budget (B) | ours | published | difference | interval | p | within | also matches | train s/run |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r['method']} | {r['buffer']} | {r['budget_bytes']} | {_ours(r)} | {_published(r)} | "
                     f"{_fmt(r['difference'])} | {_interval(r)} | {_fmt(r['p_value'], 3)} | {r['within'] or '-'} | "
                     f"{r['also_matches'] or '-'} | {_fmt(r['train_s_mean'], 1)} |")
    plain = [r for r in table if not r["variant"]]
    compared = [r for r in plain if r["within"]]
    hits = [r for r in compared if r["within"] == "yes"]
    misses = [r for r in compared if r["within"] == "no"]
    ambiguous = [r for r in hits if r["also_matches"] not in ("", "none")]
    lines += ["", f"Cells within: {len(hits)} of {len(compared)} compared"
              + ("." if not hits else ": " + ", ".join(_cell(r) for r in hits) + ".")]
    lines.append(f"Cells outside: {len(misses)}." + ("" if not misses else " " + "; ".join(
        f"{_cell(r)}: {r['difference']:+.2f} {_interval(r)}" for r in misses)))
    if ambiguous:
        lines.append("Within, but the same runs also match another method: " + "; ".join(
            f"{_cell(r)} (also {r['also_matches']})" for r in ambiguous) + ".")
    if len(plain) < len(table):
        lines.append("Rows named with a variant (e.g. 'DER, growing head') change one choice of ours and are not "
                     "counted above.")
    for r in table:
        if r["note"]:
            lines.append(f"{r['method']}: {r['note']}.")
    return "\n".join(lines) + "\n"


def render_csv(table: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in table:
        writer.writerow({k: (_fmt(v, 4) if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def render_tex(table: list[dict]) -> str:
    lines = [r"\begin{tabular}{llrllrlll}", r"\toprule",
             r"method & buffer & budget (B) & ours & published & $\Delta$ & interval & within & also matches \\",
             r"\midrule"]
    for r in table:
        ours = _ours(r).replace("±", r"$\pm$")
        pub = _published(r).replace("±", r"$\pm$")
        name = r["method"].replace("+", r"{+}")
        also = (r["also_matches"] or "-").replace("+", r"{+}")
        lines.append(f"{name} & {r['buffer']} & {r['budget_bytes']} & {ours} & {pub} & {_fmt(r['difference'])} & "
                     f"{_interval(r)} & {r['within'] or '-'} & {also} \\\\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def write(out: Path, table: list[dict]) -> list[Path]:
    from braincl.record import atomic_write_bytes

    paths = []
    for ext, render in (("md", render_md), ("csv", render_csv), ("tex", render_tex)):
        path = out / f"reference_seq_mnist.{ext}"
        atomic_write_bytes(path, render(table).encode())
        paths.append(path)
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.reference", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, required=True, help="folder holding the reference runs' metrics.json")
    parser.add_argument("--out", type=Path, required=True, help="folder for reference_seq_mnist.{md,csv,tex}")
    args = parser.parse_args(argv)
    if not args.runs.is_dir():
        raise SystemExit(f"--runs {args.runs}: no such folder; run `snakemake --cores 1 reference` first")
    table = rows(load_runs(args.runs))
    for path in write(args.out, table):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
