"""``python -m analysis --runs results/runs --benchmarks results/benchmarks --out results``

Reads run records only (never trains, never imports torch), writes ``tables/*.{md,tex,csv}``,
``figures/*.{png,pdf}``, ``claims.md`` and ``report.html`` under ``--out`` (``--only GROUP,...``: the
outputs of those groups of ``analysis/outputs.py``), and prints what it wrote and every bad record. A bad record
is skipped and reported (the good ones are still used); ``--strict`` stops with status 1 instead."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import outputs


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m analysis", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default="results/runs", help="folder searched recursively for metrics.json")
    p.add_argument("--benchmarks", default="results/benchmarks", help="folder holding rate_distortion.csv")
    p.add_argument("--out", default="results", help="writes OUT/tables and OUT/figures")
    p.add_argument("--weighting", choices=("sample", "task"), default="sample",
                   help="how A_t weights the seen tasks in accuracy tables and figures (default: sample)")
    p.add_argument("--strict", action="store_true", help="stop at once if any record is bad")
    p.add_argument("--only", default=None, metavar="GROUP[,GROUP]",
                   help=f"write only these output groups ({', '.join(outputs.GROUPS)}; default: all; "
                        "claims.md and report.html belong to core)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        groups = outputs._groups(None if args.only is None else [g for g in args.only.split(",") if g])
    except ValueError as err:
        print(f"error: --only: {err}", file=sys.stderr)
        return 2
    from . import claims, figures, report, style, tables
    from .load import RecordLoadError, load_results
    from .render import write_text

    try:
        res = load_results(args.runs, strict=args.strict)
    except RecordLoadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"read {len(res.runs)} run record(s) from {args.runs}"
          + (f"; {len(res.errors)} bad file(s) skipped" if res.errors else ""))
    out = Path(args.out)
    all_tables = tables.all_tables(res, args.weighting)
    for table in all_tables:
        if table.name not in outputs.tables_of(groups):
            continue
        paths = table.write(out / "tables")
        print(f"table  {table.name}: " + ", ".join(map(str, paths)) + (f"  ({table.note})" if table.empty else ""))
    style.apply()
    for name, build in figures.builders(res, args.benchmarks, args.weighting).items():
        if name not in outputs.figures_of(groups):
            continue
        fig, note = build()
        paths = style.save(fig, out / "figures", name)
        print(f"figure {name}: " + ", ".join(map(str, paths)) + (f"  (placeholder: {note})" if note else ""))
    if "core" in groups:
        claims_md = claims.markdown(claims.build_claims(res, args.weighting), args.weighting)
        write_text(out / outputs.CLAIMS, claims_md)
        write_text(out / outputs.REPORT, report.build(all_tables, claims_md, out))
        print(f"claims {out / outputs.CLAIMS}; report {out / outputs.REPORT}")
    missing = [p for p in outputs.all_paths(out, groups) if not p.exists()]
    if missing:  # the declared outputs must match what was written
        print("error: declared outputs not written: " + ", ".join(map(str, missing)), file=sys.stderr)
        return 2
    for bad in res.errors:
        print(f"bad record: {bad}", file=sys.stderr)
    return 0
