"""``braincl compare RUN [RUN ...]``: finished runs side by side, without a results tree.

A RUN is a run folder (the ``--out`` of ``braincl run``), its ``metrics.json``, or a folder with runs
below it (each is one column). Records are read and validated by ``analysis.load`` (the numbers are
the record's own summary, computed by ``braincl.metrics`` when the run finished; nothing is
recomputed here). Printed: average and last accuracy, forgetting, BWT, memory and compute of each
run, then the config keys whose values differ between the runs. ``--plot FILE`` draws the accuracy
after each task of every run in one figure."""

from __future__ import annotations

import json
import math
from pathlib import Path

RECORD = "metrics.json"


class CompareError(ValueError):
    """A RUN that cannot be compared; the message names it and says what to give instead."""


def record_files(arg: str | Path) -> list[Path]:
    """The ``metrics.json`` files one RUN argument names."""
    path = Path(arg)
    if not path.exists():
        raise CompareError(f"{arg}: no such file or folder; give a run folder (the --out of braincl run) or its {RECORD}")
    if path.is_file():
        if path.name != RECORD:
            raise CompareError(f"{arg} is not a {RECORD}; give a run folder or the {RECORD} in it")
        return [path]
    found = [path / RECORD] if (path / RECORD).is_file() else sorted(path.rglob(RECORD))
    if not found:
        raise CompareError(f"{arg} holds no {RECORD}: a run writes it when its last task is done (an unfinished run "
                           "keeps only checkpoint.pt); give the folder of a finished run")
    return found


def load_runs(args: list[str]):
    """(runs, curves, configs, files): one ``analysis.load`` runs row per record in the order given,
    its accuracy-after-each-task curve, and its resolved config."""
    import pandas as pd

    from analysis.load import KEYS, load_results

    files = [f for arg in args for f in record_files(arg)]
    runs, curves, configs = [], [], []
    for i, file in enumerate(files):
        # one record at a time: two runs may share an identity (same method, budget and seed, other
        # settings), which a results tree would refuse as duplicates but a comparison is about
        res = load_results(file.parent)
        bad = [e for e in res.errors if e.path == file]
        if bad:
            raise CompareError(f"{file}: {_one_line(bad[0].message)}; rerun that run, or leave it out")
        row = res.runs[res.runs["path"] == str(file)]
        if row.empty:
            raise CompareError(f"{file}: not read as a run record ({'; '.join(map(str, res.errors)) or 'unknown cause'})")
        runs.append(row.assign(run=i))
        curves.append(res.curves.merge(row[KEYS], on=KEYS).assign(run=i))
        configs.append(json.loads(file.read_text()).get("config") or {})
    return pd.concat(runs, ignore_index=True), pd.concat(curves, ignore_index=True), configs, files


def _one_line(message: str) -> str:
    """The loader's message (a head line, then one line per schema problem) as one line."""
    head, *problems = [line.strip().lstrip("- ") for line in message.strip().splitlines()]
    if not problems:
        return head
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{head.rstrip(':')}: {problems[0]}{more}"


def run_labels(files: list[Path]) -> list[str]:
    """Short names: each run folder's path without the leading folders all runs share."""
    parts = [f.resolve().parent.parts for f in files]
    common = 0
    while all(len(p) > common + 1 and p[common] == parts[0][common] for p in parts):
        common += 1
    labels = ["/".join(p[common:]) for p in parts]
    return labels if len(set(labels)) == len(labels) else [str(f.parent) for f in files]


def _na(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _cell(v, fmt) -> str:
    try:
        return "n/a" if _na(v) else fmt(v)
    except (TypeError, ValueError):
        return str(v)


def summary_rows(runs, weighting: str = "sample") -> list[list[str]]:
    """One row per quantity, one column per run. Accuracies in percent, forgetting and BWT in points."""
    from analysis.render import budget_label

    pct = lambda v: f"{100 * v:.2f}"  # noqa: E731
    count = lambda v: f"{int(v):,}"  # noqa: E731
    giga = lambda v: f"{v / 1e9:,.2f}"  # noqa: E731
    rows = [
        ("method", "method", str), ("data set", "dataset", str), ("protocol", "protocol", str),
        ("variant", "variant", lambda v: v or "-"), ("budget", "budget_bytes", budget_label), ("seed", "seed", str),
        ("tasks", "num_tasks", str), ("epochs", "epochs", lambda v: f"{v:g}"),
        (f"average accuracy (%, {weighting}-weighted)", f"avg_acc_{weighting}", pct),
        (f"last accuracy (%, {weighting}-weighted)", f"last_acc_{weighting}", pct),
        ("forgetting (points)", "forgetting", pct), ("BWT (points)", "bwt", pct),
        ("memory charged (bytes)", "charged_bytes", count), ("memory total, uncharged incl. (bytes)", "total_bytes", count),
        ("training GFLOP", "training_flops", giga), ("training optimizer steps", "training_steps", count),
        ("backbone sample-updates", "training_backbone_backward", count), ("encoding GFLOP", "encoding_flops", giga),
        ("wall time (s)", "train_s", lambda v: f"{v:,.1f}"),
    ]
    records = runs.to_dict("records")
    return [[name, *(_cell(r[col], fmt) for r in records)] for name, col, fmt in rows]


def _flatten(cfg, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


MISSING = "(absent)"


def _show(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def config_differences(configs: list[dict]) -> list[list[str]]:
    """Dotted config keys whose values are not the same in every run, with each run's value
    (``(absent)`` where a run's config lacks the key, e.g. a record from before the key existed)."""
    flat = [_flatten(c) for c in configs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    rows = []
    for key in keys:
        values = [_show(f[key]) if key in f else MISSING for f in flat]
        if len(set(values)) > 1:
            rows.append([key, *values])
    return rows


def _style():
    """The analysis figures' method colours and names where analysis/style.py provides them."""
    try:
        from analysis import style
    except ImportError:
        return None, None
    colour = getattr(style, "colour", None)
    if colour is None and hasattr(style, "palette"):
        colour = lambda name: style.palette([name]).get(name)  # noqa: E731
    return colour, getattr(style, "label", None)


def plot_curves(curves, runs, labels: list[str], path: str | Path, weighting: str = "sample") -> Path:
    """Accuracy on the seen tasks after each task, one line per run, into one figure file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colour, method_label = _style()
    methods = [f"{m}+{v}" if v else m for m, v in zip(runs["method"], runs["variant"])]
    by_method = colour is not None and len(set(methods)) == len(methods)  # else two runs would share a colour
    fig, ax = plt.subplots(figsize=(5.0, 3.4), layout="constrained")
    markers = "osD^vP*X"
    for i, (label, method) in enumerate(zip(labels, methods)):
        c = curves[curves["run"] == i].sort_values("step")
        name = f"{label} ({method_label(method)})" if method_label is not None and method_label(method) != label else label
        kw = {"color": colour(method)} if by_method else {}
        ax.plot(c["step"], 100 * c[f"acc_{weighting}"], marker=markers[i % len(markers)], label=name, **kw)
    steps = sorted(curves["step"].unique())
    ax.set_xticks(steps)
    ax.set_xlabel("after task")
    ax.set_ylabel("accuracy on seen tasks (%)")
    ax.set_title(f"Accuracy after each task ({weighting}-weighted)", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format=path.suffix[1:].lower())
    plt.close(fig)
    tmp.replace(path)  # atomic: a failed plot never leaves half a file under the asked name
    return path


def check_plot_path(path: str | Path) -> None:
    """Refuse a figure file matplotlib cannot write, before any record is read."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    formats = plt.gcf().canvas.get_supported_filetypes()
    plt.close("all")
    if path.suffix[1:].lower() not in formats:
        raise CompareError(f"--plot {path}: unknown figure format {path.suffix or '(none)'!r}; end the name with one of "
                           + ", ".join(f".{f}" for f in sorted(formats)))
    if path.is_dir():
        raise CompareError(f"--plot {path} is a folder; give a file name such as {path / 'curves.png'}")


def compare(args: list[str], *, plot: str | None = None, weighting: str = "sample") -> str:
    """The printed comparison of the RUNs; writes the figure when ``plot`` names a file."""
    from tabulate import tabulate

    if plot is not None:
        check_plot_path(plot)
    runs, curves, configs, files = load_runs(args)
    labels = run_labels(files)
    text = [tabulate(summary_rows(runs, weighting), headers=["", *labels], tablefmt="simple", disable_numparse=True)]
    diff = config_differences(configs)
    if len(files) > 1:
        text.append("")
        text.append(tabulate(diff, headers=["config key that differs", *labels], tablefmt="simple",
                             disable_numparse=True) if diff else "configs: identical")
    if plot is not None:
        text.append("")
        text.append(f"accuracy curves -> {plot_curves(curves, runs, labels, plot, weighting)}")
    return "\n".join(text)
