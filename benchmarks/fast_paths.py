"""The engine's fast paths on the CPU, each against the plain path, measured interleaved in one process.

- ``train.num_workers`` (with ``persistent_workers``): an epoch of ``Engine.fit`` with 0 vs 2 loader
  workers. Wall time (workers' CPU time is not this process's), so it shows whether the machine
  has idle cores to decode and augment on.
- ``train.channels_last``: the same epoch with NHWC tensors (process CPU time).
- Evaluation under ``torch.inference_mode`` (what ``Engine.predict`` does) vs the same loop with
  autograd recording (process CPU time).
- ``train.amp`` and ``train.cudnn_benchmark`` act on CUDA only and are not measured here; the engine
  ignores them on the CPU (tests/test_fast_paths.py checks that results are unchanged).
- ``train.pin_memory`` is a no-op without CUDA (the engine passes it to DataLoader only on CUDA).

Each comparison alternates plain and fast (plain, fast, fast, plain, ...) and reports the median of
the per-repetition ratios fast/plain (below 1: the fast path is faster). Absolute times are
indicative only: the machine is shared.

    python benchmarks/fast_paths.py --out results/benchmarks/fast_paths
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

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_overhead import NORMALIZE, TRANSFORMS, make_model, mnist32, train_cfg  # noqa: E402

from braincl.data.base import ImageDataset  # noqa: E402
from braincl.data.transforms import build_transform  # noqa: E402
from braincl.engine import Engine  # noqa: E402


def fit_epoch(model, dataset, cfg):
    engine = Engine(cfg, torch.device("cpu"))
    engine.fit(model, engine.loader(dataset, shuffle=True, drop_last=True))


def eval_inference_mode(model, dataset, cfg):
    engine = Engine(cfg, torch.device("cpu"))
    model.eval()
    engine.predict(model, engine.eval_loader(dataset))


def eval_autograd(model, dataset, cfg):
    engine = Engine(cfg, torch.device("cpu"))
    model.eval()
    with torch.enable_grad():
        outs = [model(x) for x, _ in engine.eval_loader(dataset)]
    torch.cat(outs).detach()


def channels_last_grad_error(template, dataset, batch_size: int) -> dict:
    """Relative L2 error of one training step's gradients against a float64 reference, NCHW vs
    NHWC: how far channels_last moves the arithmetic on this CPU (not a timing)."""
    x, y = next(iter(torch.utils.data.DataLoader(dataset, batch_size=batch_size)))

    def grads(model, inp):
        model.train()
        torch.nn.functional.cross_entropy(model(inp), y).backward()
        return torch.cat([p.grad.flatten().double() for p in model.parameters()])

    ref = grads(copy.deepcopy(template).double(), x.double())
    nchw = grads(copy.deepcopy(template), x)
    nhwc = grads(copy.deepcopy(template).to(memory_format=torch.channels_last),
                 x.contiguous(memory_format=torch.channels_last))
    rel = lambda g: float((g - ref).norm() / ref.norm())  # noqa: E731
    return {"nchw_vs_float64": rel(nchw), "channels_last_vs_float64": rel(nhwc)}


def compare(name, plain, fast, template, dataset, cfg_plain, cfg_fast, reps, clock) -> dict:
    """Alternate the two arms ``reps`` times; ``clock`` is 'wall' or 'cpu'."""
    now = time.perf_counter if clock == "wall" else time.process_time
    plain(copy.deepcopy(template), dataset, cfg_plain)  # warm-up, untimed
    fast(copy.deepcopy(template), dataset, cfg_fast)
    rows = []
    for rep in range(reps):
        t = {}
        for arm in (("plain", "fast") if rep % 2 == 0 else ("fast", "plain")):
            fn, cfg = (plain, cfg_plain) if arm == "plain" else (fast, cfg_fast)
            torch.manual_seed(rep)
            t0 = now()
            fn(copy.deepcopy(template), dataset, cfg)
            t[arm] = now() - t0
        rows.append({"rep": rep, "plain_s": round(t["plain"], 4), "fast_s": round(t["fast"], 4),
                     "ratio": round(t["fast"] / t["plain"], 4)})
    ratio = statistics.median(r["ratio"] for r in rows)
    print(f"{name}: median fast/plain {clock}-time ratio {ratio:.3f}", flush=True)
    return {"name": name, "clock": clock, "median_ratio": round(ratio, 4), "reps": rows}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=12, help="optimizer steps per timed epoch")
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--width", type=int, default=8, help="resnet18_slim width (>= 8: see the channels_last note)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    source = mnist32(args.steps * args.batch_size)
    dataset = ImageDataset(source.read, source.targets, build_transform(TRANSFORMS, NORMALIZE))
    eval_set = ImageDataset(source.read, source.targets, build_transform([], NORMALIZE))
    torch.manual_seed(0)
    template = make_model(args.width)
    base = dict(batch_size=args.batch_size, eval_batch_size=256, progress=False, threads=1)
    plain = train_cfg(**base)
    results = [
        compare("num_workers", fit_epoch, fit_epoch, template, dataset, plain,
                train_cfg(**base, num_workers=args.workers, persistent_workers=True), args.reps, "wall"),
        compare("channels_last", fit_epoch, fit_epoch, template, dataset, plain,
                train_cfg(**base, channels_last=True), args.reps, "cpu"),
        compare("inference_mode_eval", eval_autograd, eval_inference_mode, template, eval_set, plain, plain,
                args.reps, "cpu"),
    ]
    grad_err = channels_last_grad_error(template, dataset, args.batch_size)
    print(f"gradient error vs float64: {grad_err}")
    result = {
        "benchmark": "fast_paths",
        "command": "python benchmarks/fast_paths.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "device": f"CPU ({platform.machine()}, {torch.get_num_threads()} torch thread, 2 cores shared with "
                  "other processes); no GPU was available",
        "setup": {"data": "MNIST 5k padded to 32 px", "transforms": TRANSFORMS, "model": f"resnet18_slim width {args.width}",
                  "batch_size": args.batch_size, "steps": args.steps, "reps": args.reps, "workers": args.workers},
        "torch": torch.__version__,
        "results": results,
        "channels_last_gradient_rel_error": grad_err,
        "not_measured": {"amp": "CUDA only (torch.autocast float16 + GradScaler); no GPU on the benchmark machine",
                         "cudnn_benchmark": "CUDA only; no GPU on the benchmark machine",
                         "pin_memory": "no-op without CUDA"},
    }
    if args.out:
        write(result, args.out)
    return result


def write(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# Fast paths on the CPU", "", f"Command: `{result['command']}`", "",
             f"Device: {result['device']}. Ratios fast/plain, median over interleaved repetitions "
             "(below 1: the fast path is faster); absolute times are indicative.", "",
             "| fast path | clock | median ratio fast/plain | per-rep ratios |", "|---|---|---:|---|"]
    for r in result["results"]:
        lines.append(f"| {r['name']} | {r['clock']} | {r['median_ratio']} | "
                     + ", ".join(str(x["ratio"]) for x in r["reps"]) + " |")
    g = result["channels_last_gradient_rel_error"]
    lines += ["", f"Arithmetic: one training step's gradients against a float64 reference differ by "
              f"{g['nchw_vs_float64']:.1e} (NCHW) and {g['channels_last_vs_float64']:.1e} (channels_last), relative L2. "
              "On this CPU channels_last is faster but not bit-comparable with NCHW; it is tested within "
              "tolerance, and the other fast paths exactly (tests/test_fast_paths.py). With torch 2.14 the CPU "
              "backward of a channels_last 1x1 stride-2 convolution from 4 to 8 channels crashes the process, "
              "so resnet18_slim at width 4 must not use it.",
              "", "Loader workers: results do not depend on num_workers (per-sample augmentation seeds are drawn "
              "in the main process); on this shared 2-core machine workers compete with the training thread, so "
              "num_workers: 0 is the fast setting here."]
    lines += ["", "Not measured: " + "; ".join(f"`{k}`: {v}" for k, v in result["not_measured"].items()) + "."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
