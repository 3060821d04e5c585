"""Ours against a published table: Seq-MNIST, class-IL, of Buzzega et al., "Dark Experience for
General Continual Learning" (NeurIPS 2020), Table 2 (Mammoth).

    python -m analysis.reference --runs results/runs/seq-mnist/der2020 --out results/tables

Reads every ``metrics.json`` under ``--runs`` and writes ``reference_seq_mnist.{md,csv,tex}``.
The compared number is Mammoth's class-IL accuracy: after the last task, the mean over tasks of
each task's test accuracy (``summary.last_acc_task``). A cell is within tolerance when
``|ours - published| <= max(2 x published std, 3 points)``. A buffer of N exemplars is the byte
budget of N raw exemplars (784 B uint8 pixels + 2 B label = 786 B each)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
from pathlib import Path

import numpy as np

BYTES_PER_EXEMPLAR = 28 * 28 + 2
BUFFERS = (200, 500, 5120)
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
           "difference", "tolerance", "within", "train_s_mean"]


def tolerance(published_std: float) -> float:
    return max(2.0 * published_std, 3.0)


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
        cells.setdefault((method, variant, buffer), []).append((100.0 * record["summary"]["last_acc_task"], train_s))
    return cells


def rows(cells: dict) -> list[dict]:
    """The paper's rows in its order; each method's variant rows (``VARIANT_ROWS``) follow it."""
    out = []
    for (method, name), published in PUBLISHED.items():
        variants = [("", name)] + [(v, label) for (m, v), label in VARIANT_ROWS.items() if m == method]
        for variant, label in variants:
            for buffer, pub in published.items():
                values = cells.get((method, variant, buffer), [])
                if values or not variant:
                    out.append(_row(label, variant, buffer, pub, values))
    return out


def _row(label: str, variant: str, buffer, pub, values: list) -> dict:
    acc = np.asarray([v[0] for v in values], dtype=float)
    row = {"method": label, "variant": variant, "buffer": "-" if buffer is None else buffer,
           "budget_bytes": "-" if buffer is None else buffer * BYTES_PER_EXEMPLAR, "n": len(acc),
           "ours_mean": float(acc.mean()) if len(acc) else math.nan,
           "ours_std": float(acc.std(ddof=1)) if len(acc) > 1 else math.nan,
           "train_s_mean": float(np.mean([v[1] for v in values])) if values else math.nan,
           "published_mean": math.nan, "published_std": math.nan, "difference": math.nan,
           "tolerance": math.nan, "within": ""}
    if pub is not None:
        row["published_mean"], row["published_std"] = pub
        row["tolerance"] = tolerance(pub[1])
        if len(acc):
            row["difference"] = row["ours_mean"] - pub[0]
            row["within"] = "yes" if abs(row["difference"]) <= row["tolerance"] else "no"
    return row


def _fmt(x, digits=2):
    return "-" if isinstance(x, float) and math.isnan(x) else (f"{x:.{digits}f}" if isinstance(x, float) else str(x))


def _ours(r) -> str:
    if not r["n"]:
        return "missing"
    return f"{_fmt(r['ours_mean'])} ± {_fmt(r['ours_std'])} (n={r['n']})"


def _published(r) -> str:
    return "-" if math.isnan(r["published_mean"]) else f"{r['published_mean']:.2f} ± {r['published_std']:.2f}"


def render_md(table: list[dict]) -> str:
    lines = ["Table: Seq-MNIST, class-IL accuracy (%) after the last task, mean over tasks (Mammoth's metric); "
             "ours mean ± std over seeds (n seeds) against Buzzega et al. (NeurIPS 2020), Table 2. "
             "Within: |ours - published| <= max(2 x published std, 3). Buffer = exemplars; budget = "
             f"buffer x {BYTES_PER_EXEMPLAR} B.", "",
             "| method | buffer | budget (B) | ours | published | difference | tolerance | within | train s/run |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r['method']} | {r['buffer']} | {r['budget_bytes']} | {_ours(r)} | {_published(r)} | "
                     f"{_fmt(r['difference'])} | {_fmt(r['tolerance'])} | {r['within'] or '-'} | {_fmt(r['train_s_mean'], 1)} |")
    plain = [r for r in table if not r["variant"]]
    misses = [r for r in plain if r["within"] == "no"]
    lines += ["", f"Cells outside tolerance: {len(misses)} of {sum(1 for r in plain if r['within'])} compared."
              + ("" if not misses else " " + "; ".join(f"{r['method']} {r['buffer']}: {r['difference']:+.2f}" for r in misses))]
    if len(plain) < len(table):
        lines.append("Rows named with a variant (e.g. 'DER, growing head') change one choice of ours and are not "
                     "counted above.")
    return "\n".join(lines) + "\n"


def render_csv(table: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in table:
        writer.writerow({k: (_fmt(v, 4) if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def render_tex(table: list[dict]) -> str:
    lines = [r"\begin{tabular}{llrllrrl}", r"\toprule",
             r"method & buffer & budget (B) & ours & published & $\Delta$ & tol. & within \\", r"\midrule"]
    for r in table:
        ours = _ours(r).replace("±", r"$\pm$")
        pub = _published(r).replace("±", r"$\pm$")
        name = r["method"].replace("+", r"{+}")
        lines.append(f"{name} & {r['buffer']} & {r['budget_bytes']} & {ours} & {pub} & {_fmt(r['difference'])} & "
                     f"{_fmt(r['tolerance'])} & {r['within'] or '-'} \\\\")
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
