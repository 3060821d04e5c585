"""How BrainCL's memory grows with tasks and budgets: decoders and entropy tables against the budget,
and the cues per class left for long-term memory.

For 5, 10, 20 and 50 tasks of synthetic classes (``CLASSES_PER_TASK`` classes of ``IMAGES_PER_CLASS``
images each), at 28 px (budget 50 MB) and 224 px (budgets 50, 280 and 500 MB), with the paper's codec
(``braincl/defaults/methods/braincl.yaml``: N=128, M=192, depth 4, fp16 decoders, tables bounded by
max_cdf_length), this runs BrainCL's own accounting without training:

- decoder bytes: ``CompletionNet.decoder_nbytes`` of the real (untrained) codec: a size, so training
  does not change it; entropy tables: ``tables_nbytes_bound`` (the most a trained codec may take);
- long-term memory: a real ``CueStore`` filled task by task with cues of a fixed size, cut by
  ``BrainCL.fit_long_term_memory`` (the method's bisection over class-balanced cuts, CRC32 and headers
  charged);
- seconds per task: the accounting itself (timed), and the network work of a task projected from the
  per-image costs of ``results/benchmarks/paper_shape.json`` where that holds the shape.

Cue size: ``CUE_BPP`` bits per pixel (assumed: bmshj2018-factorized at lambda = 0.01 codes natural
images at about 0.3-0.6 bpp, CompressAI's published curves), plus the cue's 8-byte header.

    python benchmarks/memory_scaling.py --out results/benchmarks/memory_scaling
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TASKS = [5, 10, 20, 50]
CLASSES_PER_TASK = 2
IMAGES_PER_CLASS = 1300           # ImageNet-1k's training images per class
CUE_BPP = 0.5
SWEEPS = [  # (px, channels, budget)
    (28, 3, "50MB"),
    (224, 3, "50MB"),
    (224, 3, "280MB"),
    (224, 3, "500MB"),
]
PAPER_SHAPE_CASE = {28: "organamnist_28", 224: "imagenet100_224"}


def paper_codec() -> dict:
    """The codec params BrainCL resolves where a data set has no ``by_dataset`` block."""
    import yaml

    params = yaml.safe_load((ROOT / "braincl" / "defaults" / "methods" / "braincl.yaml").read_text())["params"]
    return {k: params[k] for k in ("N", "M", "depth", "decoder_precision", "max_cdf_length")}


def codec_nbytes(channels: int, N: int, M: int, depth: int, decoder_precision: str, max_cdf_length: int,
                 size: int) -> tuple[int, int]:
    """(decoder bytes, entropy-table bytes bound) of one task's completion network."""
    from braincl.codec import PRECISIONS, build_codec, tables_nbytes_bound
    from braincl.memory.budget import module_nbytes

    codec = build_codec(channels, N, M, depth=depth)
    dec = module_nbytes(codec.g_s, PRECISIONS[decoder_precision])  # as CompletionNet.decoder_nbytes charges it
    return dec, tables_nbytes_bound(M, max_cdf_length)


def cue_nbytes(px: int) -> int:
    """Arithmetic-coded bytes of one cue at ``CUE_BPP`` (the 8-byte cue header is charged by CueStore)."""
    return max(1, round(px * px * CUE_BPP / 8))


def accounting(px: int, channels: int, budget: str, tasks: int, codec: dict) -> list[dict]:
    """Task by task: BrainCL's budget fit on a real CueStore. Returns one row per task."""
    from braincl.memory import BudgetExceeded
    from braincl.memory.cues import CueStore
    from braincl.methods.braincl import BrainCL
    from braincl.units import parse_bytes

    dec, tab = codec_nbytes(channels, size=px, **codec)
    learner = SimpleNamespace(params={"memory_format": "cues", "cues_per_class": None}, ltm=CueStore(), decoders=[],
                              budget=SimpleNamespace(total=parse_bytes(budget)), task_index=0)
    learner.fixed_nbytes = lambda: BrainCL.fixed_nbytes(learner)
    learner.jpeg_tables_reserve = lambda: 0
    cue = bytes(cue_nbytes(px))  # one object shared by every cue: only its length is charged
    latent = -(-px // 2 ** codec["depth"])
    rows = []
    for t in range(tasks):
        t0 = time.perf_counter()
        learner.task_index = t
        learner.decoders.append(SimpleNamespace(g_s=object(), decoder_nbytes=lambda: dec, tables_nbytes=lambda: tab))
        labels = np.repeat(np.arange(t * CLASSES_PER_TASK, (t + 1) * CLASSES_PER_TASK), IMAGES_PER_CLASS)
        learner.ltm.add(t, [cue] * len(labels), labels, (latent, latent))
        fixed = dec * (t + 1) + tab * (t + 1)
        try:
            per_class = BrainCL.fit_long_term_memory(learner)
        except BudgetExceeded:  # the decoders crowd every cue out
            per_class = 0
            learner.ltm.keep([])
        rows.append({"task": t + 1, "decoder_bytes": dec * (t + 1), "table_bytes": tab * (t + 1),
                     "fixed_share": round(fixed / learner.budget.total, 4), "cues_per_class": int(per_class),
                     "ltm_cues": len(learner.ltm), "cue_bytes": learner.ltm.nbytes(),
                     "accounting_s": round(time.perf_counter() - t0, 4)})
        if per_class == 0:
            break
    return rows


def task_seconds(px: int, paper_shape: dict | None) -> dict | None:
    """CPU seconds of one synthetic task's BrainCL phases from the measured per-image costs."""
    if not paper_shape:
        return None
    run = next((r for r in paper_shape["runs"] if r["case"] == PAPER_SHAPE_CASE.get(px) and r["method"] == "braincl"), None)
    if run is None:
        return None
    n = CLASSES_PER_TASK * IMAGES_PER_CLASS
    per = {k: v["s_per_image"] for k, v in run["by_phase"].items() if v.get("s_per_image")}
    # one pass per phase per image (codec epochs, wake and sleep epochs multiply this)
    return {"source": f"paper_shape.json {run['case']} (CPU, 1 epoch of each phase)",
            "seconds": round(sum(per.get(k, 0) * n for k in ("codec", "encode", "recall", "wake", "transfer", "sleep")), 1)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks" / "memory_scaling")
    ap.add_argument("--paper-shape", type=Path, default=ROOT / "results" / "benchmarks" / "paper_shape.json")
    args = ap.parse_args(argv)
    codec = paper_codec()
    shape = json.loads(args.paper_shape.read_text()) if args.paper_shape.is_file() else None
    sweeps = []
    for px, channels, budget in SWEEPS:
        rows = accounting(px, channels, budget, max(TASKS), codec)
        dec, tab = codec_nbytes(channels, size=px, **codec)
        sweeps.append({"px": px, "channels": channels, "budget": budget, "decoder_bytes_per_task": dec,
                       "table_bytes_per_task": tab, "cue_bytes": cue_nbytes(px) + 8, "rows": rows,
                       "task_seconds": task_seconds(px, shape),
                       "at": {str(t): next((r for r in rows if r["task"] == t), None) for t in TASKS},
                       "crowded_out_at_task": next((r["task"] for r in rows if r["cues_per_class"] == 0), None)})
    record = {"benchmark": "memory_scaling",
              "command": "python benchmarks/memory_scaling.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "codec": codec, "classes_per_task": CLASSES_PER_TASK, "images_per_class": IMAGES_PER_CLASS,
              "cue_bpp_assumed": CUE_BPP, "tasks": TASKS, "sweeps": sweeps}
    if args.out:
        write(record, args.out)
    return record


def label(s: dict) -> str:
    return f"{s['px']} px, {s['budget']}"


def write(record: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    c = record["codec"]
    lines = ["# BrainCL's memory against tasks and budgets", "", f"Command: `{record['command']}`", "",
             f"Codec: N={c['N']}, M={c['M']}, depth {c['depth']}, {c['decoder_precision']} decoders, tables bounded at "
             f"max_cdf_length={c['max_cdf_length']} (the paper codec, used wherever a data set has no `by_dataset` block). "
             f"{record['classes_per_task']} synthetic classes per task, {record['images_per_class']} images per class; cues at "
             f"an assumed {record['cue_bpp_assumed']} bpp plus their 8-byte header. Accounting: `BrainCL.fit_long_term_memory` "
             "on a real `CueStore`; no training.", "",
             "| px | budget | decoder B/task | tables B/task | cue B | tasks | decoders+tables | share of budget | cues/class left | long-term cues | accounting s/task |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in record["sweeps"]:
        for t in record["tasks"]:
            r = s["at"][str(t)]
            if r is None:
                lines.append(f"| {s['px']} | {s['budget']} | {s['decoder_bytes_per_task']:,} | {s['table_bytes_per_task']:,} | "
                             f"{s['cue_bytes']} | {t} | over budget | > 100% | 0 (refused since task {s['crowded_out_at_task']}) | 0 | - |")
                continue
            lines.append(f"| {s['px']} | {s['budget']} | {s['decoder_bytes_per_task']:,} | {s['table_bytes_per_task']:,} | "
                         f"{s['cue_bytes']} | {t} | {(r['decoder_bytes'] + r['table_bytes']) / 1e6:.1f} MB | "
                         f"{100 * r['fixed_share']:.0f}% | {r['cues_per_class']} | {r['ltm_cues']:,} | {r['accounting_s']} |")
    lines += ["", "Decoders crowd the cues out (no cue per class left; BrainCL refuses the budget) at task: "
              + ", ".join(f"{label(s)}: {s['crowded_out_at_task'] or 'not within 50'}" for s in record["sweeps"]) + ".", ""]
    secs = [s for s in record["sweeps"] if s["task_seconds"]]
    if secs:
        lines += ["Network work per task of " f"{record['classes_per_task'] * record['images_per_class']} images, one pass "
                  "of each phase, projected from the measured per-image CPU costs: "
                  + "; ".join(f"{s['px']} px {s['task_seconds']['seconds']} s ({s['task_seconds']['source']})"
                              for s in secs if s["budget"] == secs[0]["budget"] or s["px"] == 224) + ".", ""]
    lines += ["![memory scaling](memory_scaling.png)", ""]
    out.with_suffix(".md").write_text("\n".join(lines))

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7, 3.4), constrained_layout=True)
    from braincl.units import parse_bytes

    longest = max(record["sweeps"], key=lambda s: len(s["rows"]))  # the same codec: one decoder line serves all
    ax1.plot([r["task"] for r in longest["rows"]], [(r["decoder_bytes"] + r["table_bytes"]) / 1e6 for r in longest["rows"]],
             color="black", label="decoders + tables (every setting)")
    for s in record["sweeps"]:
        tasks = [r["task"] for r in s["rows"]]
        line, = ax1.plot(tasks, [max(r["cue_bytes"] / 1e6, 1e-2) for r in s["rows"]], linestyle="--")
        ax1.axhline(parse_bytes(s["budget"]) / 1e6, color=line.get_color(), linestyle=":", linewidth=1)
        ax2.plot(tasks, [max(r["cues_per_class"], 0.8) for r in s["rows"]], color=line.get_color(), label=label(s))
        if s["crowded_out_at_task"]:
            ax2.plot([s["crowded_out_at_task"]], [0.8], marker="x", color=line.get_color())
    ax1.set(xlabel="tasks learned", ylabel="long-term memory (MB)", xscale="log", yscale="log",
            title="kept: decoders (solid), cues (dashed)\nbudget (dotted)")
    ax2.set(xlabel="tasks learned", ylabel="cues per class left", xscale="log", yscale="log",
            title="cues per class (x: none left)")
    for ax in (ax1, ax2):
        ax.set_xticks(record["tasks"], [str(t) for t in record["tasks"]])
        ax.grid(alpha=0.3)
    handles, labels = ax2.get_legend_handles_labels()
    h1, l1 = ax1.get_legend_handles_labels()
    handles, labels = h1 + handles, l1 + labels
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    fig.savefig(out.with_suffix(".png"), dpi=150)
    plt.close(fig)


if __name__ == "__main__":
    main()
