"""Two sets of run records compared: which numbers moved, and by more than seed noise or not.

    python -m analysis.provenance results/runs rerun/results/runs [--out provenance.md] [--strict]

Runs are paired by their path below each folder (``{dataset}/{protocol}/{method}/{budget}/seed{k}``).
For every pair and every compared number (``METRICS``) the report says whether the two are
bit-identical, moved within seed noise, or moved beyond it. Seed noise is the spread of the same run
over seeds: the sample std (ddof=1) of the number over the seeds of the run's cell (its path without
the seed) in A, the set compared against (B's is shown beside it; it is not used, since a run that
moved would inflate it). A move is beyond noise when it exceeds ``NOISE_STDS`` (2) times that std:
one rerun against the seed distribution, a screening rule for "look at this run", not a verdict (the
comparisons of methods use paired intervals, ``analysis.stats``). A cell with one seed in A has no
noise estimate and its moves are reported as such.

Beside the numbers, the report lists the environment fields (``ENV_FIELDS``: CPU model, the vector
instruction set torch dispatched to, torch's version and build, the code revision, thread count)
that differ between paired records, so that a move can be traced to a machine, a library or the
code. On one machine a rerun of the same revision and config is bit-identical; on another CPU the
floating-point sums of MKL and oneDNN may run in another order and the last bits differ
(docs/provenance.md). Exit status: 0, or 1 with ``--strict`` when a number moved beyond noise or a
run is in one set only."""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

import numpy as np

# A rerun's move counts as beyond seed noise past this many of the cell's stds over seeds (about the
# two-sided 95% range of one draw from the seed distribution).
NOISE_STDS = 2.0

# (label, path in the record). Accuracies and forgetting are fractions; bytes are integers.
METRICS = (
    ("last_acc_task", ("summary", "last_acc_task")),
    ("last_acc_sample", ("summary", "last_acc_sample")),
    ("avg_acc_task", ("summary", "avg_acc_task")),
    ("avg_acc_sample", ("summary", "avg_acc_sample")),
    ("forgetting", ("summary", "forgetting")),
    ("bwt", ("summary", "bwt")),
    ("charged_bytes", ("memory", "final", "charged_bytes")),
)
ENV_FIELDS = (
    ("git_revision", ("git_revision",)),
    ("cpu_model", ("cpu", "model")),
    ("torch_capability", ("cpu", "torch_capability")),
    ("simd_flags", ("cpu", "simd_flags")),
    ("torch", ("torch",)),
    ("torch_build", ("torch_build", "libraries")),
    ("torch_threads", ("torch_threads",)),
    ("device", ("device",)),
)
IDENTICAL, WITHIN, BEYOND, NO_NOISE = "identical", "within noise", "beyond noise", "no noise estimate"
_SEED = re.compile(r"/seed\d+$")


def _get(record: dict, path: tuple):
    node = record
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def load_set(root: Path) -> dict[str, dict]:
    """Run path (below ``root``, without ``/metrics.json``) -> record. A file that is not JSON is a
    one-line error naming it."""
    root = Path(root)
    if not root.is_dir():
        raise SystemExit(f"{root}: no such folder of run records; give the folder that holds the runs' metrics.json")
    out = {}
    for path in sorted(root.rglob("metrics.json")):
        try:
            out[path.parent.relative_to(root).as_posix()] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise SystemExit(f"{path}: not a readable run record ({err}); remove or regenerate it") from None
    if not out:
        raise SystemExit(f"{root}: no metrics.json below it; give the folder that holds the runs")
    return out


def cell_of(run: str) -> str:
    """The run's cell: its path without the seed folder."""
    return _SEED.sub("", run)


def seed_noise(records: dict[str, dict], metric: tuple) -> dict[str, float]:
    """Cell -> sample std (ddof=1) of ``metric`` over its seeds; NaN for a cell with one seed."""
    by_cell: dict[str, list[float]] = {}
    for run, record in records.items():
        value = _get(record, metric)
        if isinstance(value, (int, float)):
            by_cell.setdefault(cell_of(run), []).append(float(value))
    return {cell: float(np.std(v, ddof=1)) if len(v) > 1 else math.nan for cell, v in by_cell.items()}


def verdict(a: float, b: float, noise: float) -> str:
    """``noise``: the std over seeds of the run's cell in A."""
    if a == b:
        return IDENTICAL
    if math.isnan(noise):
        return NO_NOISE
    return BEYOND if abs(b - a) > NOISE_STDS * noise else WITHIN


def compare(a: dict[str, dict], b: dict[str, dict]) -> dict:
    """Every compared number of every run in both sets: ``rows`` (run, metric, a, b, difference,
    noise in each set, verdict), ``environment`` (run, field, a, b for each differing field),
    ``only_a`` / ``only_b`` (runs in one set only) and ``counts`` (verdict -> number of rows)."""
    paired = sorted(set(a) & set(b))
    rows, env = [], []
    for label, path in METRICS:
        noise_a, noise_b = seed_noise(a, path), seed_noise(b, path)
        for run in paired:
            va, vb = _get(a[run], path), _get(b[run], path)
            if not isinstance(va, (int, float)) or not isinstance(vb, (int, float)):
                continue
            cell = cell_of(run)
            na, nb = noise_a.get(cell, math.nan), noise_b.get(cell, math.nan)
            rows.append({"run": run, "metric": label, "a": float(va), "b": float(vb), "difference": float(vb) - float(va),
                         "noise_a": na, "noise_b": nb, "verdict": verdict(float(va), float(vb), na)})
    for run in paired:
        ea, eb = a[run].get("environment") or {}, b[run].get("environment") or {}
        for label, path in ENV_FIELDS:
            va, vb = _get(ea, path), _get(eb, path)
            if va != vb:
                env.append({"run": run, "field": label, "a": va, "b": vb})
    counts = {v: sum(r["verdict"] == v for r in rows) for v in (IDENTICAL, WITHIN, BEYOND, NO_NOISE)}
    return {"rows": rows, "environment": env, "only_a": sorted(set(a) - set(b)), "only_b": sorted(set(b) - set(a)),
            "paired": len(paired), "counts": counts}


def _num(x: float) -> str:
    return "-" if isinstance(x, float) and math.isnan(x) else f"{x:.6g}"


def _short(value) -> str:
    if isinstance(value, list):
        return f"{len(value)} item(s)" if len(value) > 3 else ", ".join(map(str, value))
    return "absent" if value is None else str(value)


def render_md(result: dict, name_a: str, name_b: str) -> str:
    c = result["counts"]
    lines = [f"# Record sets compared: A = {name_a}, B = {name_b}", "",
             f"{result['paired']} run(s) in both sets; {len(result['only_a'])} only in A, {len(result['only_b'])} only in "
             f"B. Numbers compared: {', '.join(label for label, _ in METRICS)}.",
             f"Identical: {c[IDENTICAL]}; moved within seed noise: {c[WITHIN]}; beyond seed noise "
             f"(> {NOISE_STDS:g} x the std over seeds of the run's cell in A): {c[BEYOND]}; "
             f"moved, no noise estimate (one seed in A): {c[NO_NOISE]}.", ""]
    moved = [r for r in result["rows"] if r["verdict"] != IDENTICAL]
    if moved:
        lines += ["| run | number | A | B | B - A | seed std A | seed std B | verdict |", "|---|---|---|---|---|---|---|---|"]
        order = {BEYOND: 0, NO_NOISE: 1, WITHIN: 2}
        for r in sorted(moved, key=lambda r: (order[r["verdict"]], r["run"], r["metric"])):
            lines.append(f"| {r['run']} | {r['metric']} | {_num(r['a'])} | {_num(r['b'])} | {r['difference']:+.3g} | "
                         f"{_num(r['noise_a'])} | {_num(r['noise_b'])} | {r['verdict']} |")
    else:
        lines.append("Every compared number is bit-identical.")
    if result["environment"]:
        lines += ["", "Environment fields that differ between paired records:", "",
                  "| field | A | B | runs |", "|---|---|---|---|"]
        grouped: dict[tuple, int] = {}
        for e in result["environment"]:
            key = (e["field"], _short(e["a"]), _short(e["b"]))
            grouped[key] = grouped.get(key, 0) + 1
        lines += [f"| {f} | {va} | {vb} | {n} |" for (f, va, vb), n in sorted(grouped.items())]
    else:
        lines += ["", "The paired records name the same environment (revision, CPU, torch build, threads)."]
    for side, runs in (("A", result["only_a"]), ("B", result["only_b"])):
        if runs:
            lines += ["", f"Only in {side}: " + ", ".join(runs)]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.provenance", description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="first folder of run records (e.g. the committed results/runs)")
    parser.add_argument("b", type=Path, help="second folder of run records (e.g. a rerun on another machine)")
    parser.add_argument("--out", type=Path, help="write the report here (markdown) instead of stdout")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a number moved beyond seed noise or a run is in one set only")
    args = parser.parse_args(argv)
    result = compare(load_set(args.a), load_set(args.b))
    text = render_md(result, str(args.a), str(args.b))
    if args.out:
        from braincl.record import atomic_write_bytes

        atomic_write_bytes(args.out, text.encode())
        print(args.out)
    else:
        print(text, end="")
    failed = result["counts"][BEYOND] or result["only_a"] or result["only_b"]
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
