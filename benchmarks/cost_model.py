"""Cost model of the paper grid: per-image costs measured at the paper's full shapes on a CPU, scaled to a GPU.

1. Per-image CPU seconds come from ``results/benchmarks/paper_shape.json`` (``benchmarks/paper_shape.py``:
   each paper experiment file run end to end at its true resolution, backbone and codec, image counts
   cut): ER's training step (reading and augmentation included, one core) and evaluation, BrainCL's
   codec training, encoding (``compress``) and recall (``decompress``), per measured shape (ImageNet-100
   224 px JPEG, CORe50 128 px PNG, MedMNIST 224 px and 28 px in memory). Loading per storage format is
   timed here (``measure_loading``), to bound a GPU by its loader workers.
2. Count the images each job of the grid pushes through each of those operations (epochs,
   replay buffer sized by the byte budget, teacher forwards, codec passes, evaluation after each
   task) from the job's resolved config. The counts are a model of each method's loop, written
   out in ``job_work`` below; they are estimates, not a trace.
3. Convert CPU seconds to GPU seconds with one throughput ratio taken from public numbers (an
   assumption: no GPU was available for calibration, see ``GPU`` below). The rANS coder's share of
   encoding and recall (``CODER_SHARE``) stays at CPU speed: CompressAI codes on the CPU.
4. Resources per ``{dataset}/{method}``: SLURM runtime (the slowest budget and seed, times ``--safety``,
   rounded up), memory (``paper_shape.json``'s projected host memory of the full job; methods it
   did not run take ER's, whose raw buffer bounds every replay method's) and CPUs (the loader workers
   that keep the GPU fed at that shape, plus the main process). The workflow reads them from
   ``--resources`` (``resources_file`` in config/paper.yaml) and runs ``train.threads = cpus_per_task``.

    python benchmarks/cost_model.py --grid config/paper.yaml --out results/benchmarks/cost_model_paper \\
        --resources config/resources_paper.yaml
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The GPU the estimate is for. Public number: timm's benchmark of ResNet-50 training with AMP and
# channels_last on one A100 runs at about 2,600 img/s at 224 px (huggingface/pytorch-image-models
# issue #1491). ResNet-18 needs 1.82 GFLOPs per 224 px image against ResNet-50's 4.11
# (torchvision's model table), hence 2,600 * 4.11 / 1.82 ~ 5,900 img/s. Dividing that by the
# measured CPU rate gives the GPU/CPU ratio applied to every operation: an ASSUMPTION, optimistic
# for small images (a GPU is data-loading bound at 28-32 px) and for the entropy coder (rANS runs
# on the CPU in CompressAI), which the safety factor and the CPU-bound floor below absorb.
GPU = {"name": "NVIDIA A100", "resnet18_224_train_img_per_s": 2600 * 4.11 / 1.82,
       "source": "ResNet-50 AMP+channels_last 2,600 img/s on one A100 (timm issue #1491), scaled by FLOPs "
                 "4.11/1.82 to ResNet-18"}

# Used when config/paper.yaml is not there yet: the grid the paper reports (ImageNet-100 at three
# budgets, CORe50, MedMNIST flags, three seeds, every method). Budgets for CORe50/MedMNIST and the
# epochs are assumptions; a real grid file's experiment configs replace them.
ASSUMED_GRID = {
    "grid": [
        {"dataset": "imagenet100", "budgets": ["100MB", "280MB", "500MB"], "seeds": [0, 1, 2], "overrides": {"train.epochs": 90}},
        {"dataset": "core50", "budgets": ["100MB"], "seeds": [0, 1, 2], "overrides": {"train.epochs": 30}},
        *[{"dataset": "medmnist", "flag": f, "budgets": ["5MB"], "seeds": [0, 1, 2],
           "overrides": {"train.epochs": 50, "dataset.params.flag": f}}
          for f in ("bloodmnist", "organamnist", "pathmnist")],
    ],
    "methods": ["finetune", "joint", "er", "icarl", "bic", "wa", "lwf", "ewc", "derpp", "gen_replay",
                "jpeg_replay", "braincl"],
}

# Bits per pixel of a BrainCL cue: ASSUMED (bmshj2018-factorized at lambda = 0.01 codes natural
# images at roughly 0.3-0.6 bpp; CompressAI's published rate-distortion curves). The codec timed
# here is untrained and codes noise, so its byte count says nothing about trained cues.
CUE_BPP = 0.5

# Data set sizes (training and test images, classes) where the data cannot be read here. MedMNIST
# from medmnist.INFO (train/test counts), ImageNet-100 ~1,300 train and 50 val images per class,
# CORe50 NC: 8 training sessions x ~300 frames per object, 3 test sessions.
DATA_SIZES = {
    "imagenet100": {"train": 130_000, "test": 5_000, "classes": 100, "channels": 3},
    "core50": {"train": 50 * 8 * 300, "test": 50 * 3 * 300, "classes": 50, "channels": 3},
    "bloodmnist": {"train": 11_959, "test": 3_421, "classes": 8, "channels": 3},
    "organamnist": {"train": 34_561, "test": 17_778, "classes": 11, "channels": 1},
    "pathmnist": {"train": 89_996, "test": 7_180, "classes": 9, "channels": 3},
    "tissuemnist": {"train": 165_466, "test": 47_280, "classes": 8, "channels": 1},
    "mnist5k": {"train": 4_000, "test": 1_000, "classes": 10, "channels": 1},
}


# ---------------------------------------------------------------------------------- measurement
def _per_image(fn, batch: int, reps: int) -> float:
    """Best of ``reps`` timings: on a shared machine the fastest run is the least disturbed one."""
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) / batch


def measure_loading(reps: int) -> dict:
    """Seconds per training image of reading and augmenting, on one core, by storage format:
    ImageNet JPEG (a 500x375 file, decoded, RandomResizedCrop 224, flip, normalise), CORe50 PNG
    (128 px, RandomCrop with padding, flip) and MedMNIST (uint8 arrays in memory at 224 px)."""
    import io

    from PIL import Image
    from torchvision.io import decode_image

    from braincl.data.transforms import build_transform

    norm = {"mean": [0.5] * 3, "std": [0.5] * 3}
    rng = np.random.default_rng(0)
    # A smooth image with noise compresses like a photograph, unlike pure noise.
    base = np.kron(rng.integers(0, 256, (24, 32, 3)), np.ones((16, 16, 1)))[:375, :500]
    photo = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    files = {}
    for name, arr, fmt in (("jpeg", photo, "JPEG"), ("png", photo[:128, :128], "PNG")):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format=fmt, quality=90)
        files[name] = torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8)
    tf = {
        "jpeg": build_transform([{"name": "RandomResizedCrop", "size": 224, "antialias": True},
                                 {"name": "RandomHorizontalFlip"}], norm),
        "png": build_transform([{"name": "RandomCrop", "size": 128, "padding": 16}, {"name": "RandomHorizontalFlip"}], norm),
        "memory": build_transform([], norm),
    }
    mem = torch.as_tensor(photo[:224, :224]).permute(2, 0, 1).contiguous()
    work = {"jpeg": lambda: tf["jpeg"](decode_image(files["jpeg"])),
            "png": lambda: tf["png"](decode_image(files["png"])),
            "memory": lambda: tf["memory"](mem)}
    n = 20
    return {k: _per_image(lambda fn=fn: [fn() for _ in range(n)], n, reps) for k, fn in work.items()}


# Storage format of each data set's training images (what a loader worker decodes per image).
LOAD_FORMAT = {"imagenet100": "jpeg", "core50": "png"}


PAPER_SHAPE = ROOT / "results" / "benchmarks" / "paper_shape.json"
# Share of encoding / recall time spent in CompressAI's rANS coder, which stays on the CPU on a GPU
# node; the rest (analysis / synthesis transforms) runs on the GPU. Measured apart by this script's
# earlier version on FactorizedPrior(128, 192) at 64 px (one core): compress 0.748 ms vs analysis
# 7.042 ms, decompress 1.151 ms vs synthesis 9.875 ms per image (results/benchmarks/cost_model_paper.json
# as committed before the full-shape runs).
CODER_SHARE = {"compress": 0.748 / (0.748 + 7.042), "decompress": 1.151 / (1.151 + 9.875)}
# (method run, phase) in paper_shape.json for each operation of ``job_work``.
OPS = {"train": ("er", "train"), "infer": ("er", "eval"), "codec_train": ("braincl", "codec"),
       "compress": ("braincl", "encode"), "decompress": ("braincl", "recall")}


def shape_case(cfg: dict) -> str:
    """The paper_shape.json case measured at this job's shape."""
    name, params = cfg["dataset"]["name"], cfg["dataset"].get("params") or {}
    if name == "imagenet100":
        return "imagenet100_224"
    if name == "core50":
        return "core50_128"
    if name == "medmnist":
        return "bloodmnist_224" if int(params.get("size", 28)) >= 128 else "organamnist_28"
    raise SystemExit(f"cost_model: no full-shape measurement for data set {name!r}; add a case to benchmarks/paper_shape.py")


def load_costs(path: Path) -> dict:
    """{case: {op: CPU seconds per image}} from paper_shape.json."""
    if not path.is_file():
        raise SystemExit(f"cost_model: {path} not found; run `make paper-shape` (benchmarks/paper_shape.py) first")
    record = json.loads(path.read_text())
    runs = {(r["case"], r["method"]): r["by_phase"] for r in record["runs"]}
    out: dict = {}
    for (case, _), _phases in runs.items():
        out[case] = {}
        for op, (method, phase) in OPS.items():
            s = (runs.get((case, method)) or {}).get(phase) or {}
            if not s.get("s_per_image"):
                raise SystemExit(f"cost_model: {path} has no {method} {phase} timing for {case}; rerun benchmarks/paper_shape.py")
            out[case][op] = float(s["s_per_image"])
    return out


# ---------------------------------------------------------------------------------- grid
def load_jobs(grid_path: Path | None) -> tuple[list[dict], str]:
    """Every (dataset, method, budget, seed) with its resolved config."""
    from braincl import config, workflow_config
    from braincl.registry import METHODS

    if grid_path is not None and grid_path.is_file():
        shown = grid_path.resolve().relative_to(ROOT) if grid_path.resolve().is_relative_to(ROOT) else grid_path
        spec, source = workflow_config.read(grid_path), str(shown)  # read as the workflow reads it
    else:
        spec, source = ASSUMED_GRID, "assumed grid (config/paper.yaml absent)"
    jobs = []
    for entry in spec["grid"]:
        methods = entry.get("methods", spec.get("methods"))
        for method in methods:
            # As the workflow expands the grid: a method without memory (finetune, joint) runs once per seed.
            budgets = entry.get("budgets", [None]) if METHODS.get(method).needs_budget else [None]
            for budget in budgets:
                overrides = {"dataset.name": entry["dataset"], **entry.get("overrides", {}), **entry.get("set", {}),
                             "method.name": method}
                if budget is not None:
                    overrides["memory.budget"] = budget
                exp = entry.get("experiment")
                cfg = config.load(ROOT / exp if exp else None, [f"{k}={v}" for k, v in overrides.items()])
                for seed in entry.get("seeds", [0]):
                    jobs.append({"dataset": entry["dataset"], "protocol": entry.get("protocol", "cil"),
                                 "method": method, "budget": budget, "seed": seed, "cfg": cfg})
    return jobs, source


def data_size(cfg: dict) -> tuple[str, dict, int]:
    name = cfg["dataset"]["name"]
    params = cfg["dataset"].get("params") or {}
    key = params.get("flag", name) if name == "medmnist" else name
    if key not in DATA_SIZES:
        raise SystemExit(f"cost_model: no image counts for data set {key!r}; add it to DATA_SIZES in {__file__}")
    size = int(params.get("resolution") or params.get("size") or 32)
    return key, DATA_SIZES[key], size


def job_work(cfg: dict) -> dict:
    """Images through each operation over the whole job: {op: images}. ``op`` is train, infer,
    codec_train, compress or decompress (each also counted for the codec's analysis or synthesis
    transform). Model of each method's loop, task by task."""
    _, sizes, res = data_size(cfg)
    method, p = cfg["method"]["name"], cfg["method"].get("params") or {}
    sc = cfg["scenario"]
    classes = sizes["classes"]
    first, inc = int(sc.get("initial_classes") or 2), int(sc.get("increment") or 2)
    tasks = 1 + math.ceil((classes - first) / inc)
    per_class_train, per_class_test = sizes["train"] / classes, sizes["test"] / classes
    epochs = int(cfg["train"]["epochs"])
    budget = cfg["memory"].get("budget")
    from braincl.units import parse_bytes

    budget_b = parse_bytes(budget) if budget is not None else 0
    img_bytes = sizes["channels"] * res * res
    w = {"train": 0.0, "infer": 0.0, "codec_train": 0.0, "compress": 0.0, "decompress": 0.0,
         "from_disk": 0.0}  # from_disk: training images read from files (not an operation; buffers are in memory)
    seen_classes, seen_train = 0, 0.0
    for t in range(tasks):
        new_classes = first if t == 0 else min(inc, classes - seen_classes)
        n = new_classes * per_class_train
        past = seen_train
        seen_classes += new_classes
        seen_train += n
        buffer = min(budget_b / img_bytes, past) if t > 0 else 0.0
        if method in ("finetune", "ewc", "lwf"):
            w["train"] += epochs * n
            w["from_disk"] += epochs * n
            if method == "lwf" and t > 0:
                w["infer"] += epochs * n            # teacher forward
            if method == "ewc":
                w["train"] += n                     # Fisher: one forward/backward pass
        elif method == "joint":
            w["train"] += epochs * seen_train
            w["from_disk"] += epochs * seen_train
        elif method in ("er", "icarl", "wa", "bic", "jpeg_replay"):
            if method == "jpeg_replay":
                buffer = min(10 * budget_b / img_bytes, past) if t > 0 else 0.0  # ~10x JPEG ratio
            w["train"] += epochs * (n + buffer)
            w["from_disk"] += epochs * n
            if method in ("icarl", "wa", "bic") and t > 0:
                w["infer"] += epochs * (n + buffer)  # teacher forward for distillation
            if method == "icarl":
                w["infer"] += n                     # herding features
        elif method == "derpp":
            w["train"] += epochs * n * 2            # one replay batch per step, two replay terms share it
            w["from_disk"] += epochs * n
        elif method == "gen_replay":
            vae_epochs = int(p.get("vae_epochs", 10))
            w["codec_train"] += vae_epochs * (n + (past and n))  # VAE ~ codec cost per image
            w["train"] += epochs * 2 * n
            w["from_disk"] += epochs * n + vae_epochs * n
        elif method == "braincl":  # braincl/methods/braincl.py, task by task
            codec_epochs = int(p.get("codec_epochs") or 10)
            wake_epochs = epochs if p.get("wake_epochs") is None else int(p["wake_epochs"])
            sleep_epochs = epochs if p.get("sleep_epochs") is None else int(p["sleep_epochs"])
            w["from_disk"] += n                     # the task's images are read once (spill.read_images)
            w["codec_train"] += (int(p["codec_steps"]) * int(p.get("codec_batch_size") or 16)
                                 if p.get("codec_steps") else codec_epochs * n)
            w["compress"] += n                      # every training image becomes a cue (working memory)
            cue_bytes = res * res * CUE_BPP / 8 + 8
            old_cues = min(budget_b / cue_bytes, past)
            w["decompress"] += 3 * n                # working memory recalled for wake, transfer and sleep
            w["infer"] += wake_epochs * n + n       # wake: frozen backbone forward; selection features
            if p.get("sleep", True):
                w["decompress"] += old_cues         # long-term memory recalled once per sleep (cache_recall)
                w["train"] += sleep_epochs * n * (2 if t > 0 else 1)  # er's draws per epoch
        else:
            w["train"] += epochs * (n + buffer)     # unknown method: replay-like
            w["from_disk"] += epochs * n
        w["infer"] += seen_classes * per_class_test  # evaluation on every seen task
    return w


def estimate(jobs: list[dict], costs: dict, ratio: float) -> list[dict]:
    rows = []
    for job in jobs:
        cfg = job["cfg"]
        key, _, res = data_size(cfg)
        work = job_work(cfg)
        from_disk = work.pop("from_disk")
        per = costs["shapes"][shape_case(cfg)]
        cpu_s = {op: n * per[op] for op, n in work.items() if op in per}
        # A GPU cannot outrun its loader: images are decoded (files) or just augmented (in-memory
        # buffers, recalled cues) by train.num_workers CPU workers at this CPU's per-core speed (an
        # assumption for the node); the job takes the longer of network time and loading time.
        workers = max(1, int(cfg["train"].get("num_workers") or 1))
        loaded = work["train"] + work["codec_train"] + work["infer"]
        load_s = (from_disk * costs["loading"][LOAD_FORMAT.get(cfg["dataset"]["name"], "memory")]
                  + max(0.0, loaded - from_disk) * costs["loading"]["memory"]) / workers
        coder_s = sum(cpu_s[op] * CODER_SHARE[op] for op in CODER_SHARE)
        net_s = sum(v * (1 - CODER_SHARE.get(op, 0.0)) / ratio for op, v in cpu_s.items())
        gpu_train = max(net_s, load_s)
        # The entropy coder runs on the CPU even on a GPU node: its share is not scaled.
        gpu_s = gpu_train + coder_s
        rows.append({"dataset": job["dataset"], "data": key, "case": shape_case(cfg), "protocol": job["protocol"], "method": job["method"],
                     "budget": job["budget"], "seed": job["seed"], "resolution": res,
                     "images": {**{k: round(v) for k, v in work.items()}, "read_from_disk": round(from_disk)},
                     "cpu_hours": round(sum(cpu_s.values()) / 3600, 2), "gpu_hours": round(gpu_s / 3600, 3),
                     "loader_bound": load_s > net_s})
    return rows


def resources(rows: list[dict], costs: dict, ratio: float, projection: list[dict], safety: float,
              min_minutes: int) -> dict:
    """``{label}/{method}: {runtime, mem_mb, cpus_per_task}`` plus ``default`` (the largest of each). The
    label is the data set's, or the MedMNIST flag's (the workflow looks a job up by label first)."""
    mem = {}
    for p in projection:  # paper_shape.json: projected request per data label, method and budget
        key = (p["data"], p["method"])
        mem[key] = max(mem.get(key, 0), int(p["request_bytes"]) // 2**20)
    out: dict = {}
    for r in rows:
        key = f"{r['data']}/{r['method']}"  # the run's label: each MedMNIST flag is sized on its own
        measured = r["method"] if (r["data"], r["method"]) in mem else "er"
        mem_mb = mem.get((r["data"], measured)) or mem.get((r["dataset"], measured))
        if mem_mb is None:
            raise SystemExit(f"cost_model: paper_shape.json projects no memory for {r['data']}; rerun benchmarks/paper_shape.py")
        # Loader workers to feed the GPU: loading seconds per image x GPU training images per second.
        gpu_img_s = ratio / costs["shapes"][r["case"]]["train"]
        workers = math.ceil(costs["loading"][LOAD_FORMAT.get(r["dataset"], "memory")] * gpu_img_s)
        res = {"runtime": math.ceil(max(min_minutes, r["gpu_hours"] * 60 * safety)), "mem_mb": mem_mb,
               "cpus_per_task": int(min(16, max(2, workers + 1)))}
        old = out.get(key)
        out[key] = res if old is None else {k: max(old[k], res[k]) for k in res}
    out["default"] = {k: max(v[k] for v in out.values()) for k in ("runtime", "mem_mb", "cpus_per_task")}
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid", type=Path, default=ROOT / "config" / "paper.yaml")
    ap.add_argument("--paper-shape", type=Path, default=PAPER_SHAPE, help="full-shape measurements (benchmarks/paper_shape.py)")
    ap.add_argument("--out", type=Path, help="write OUT.json and OUT.md")
    ap.add_argument("--resources", type=Path, help="write {dataset}/{method}: {runtime, mem_mb, cpus_per_task} here")
    ap.add_argument("--safety", type=float, default=1.5)
    ap.add_argument("--min-minutes", type=int, default=30, help="floor of every SLURM runtime (start-up, data checks)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    costs = {"shapes": load_costs(args.paper_shape), "loading": measure_loading(4)}
    shape_record = json.loads(args.paper_shape.read_text())
    ratio = GPU["resnet18_224_train_img_per_s"] * costs["shapes"]["imagenet100_224"]["train"]
    jobs, source = load_jobs(args.grid)
    rows = estimate(jobs, costs, ratio)
    total_gpu = sum(r["gpu_hours"] for r in rows)
    res = resources(rows, costs, ratio, shape_record["projection"], args.safety, args.min_minutes)
    shown = args.paper_shape.resolve().relative_to(ROOT) if args.paper_shape.resolve().is_relative_to(ROOT) else args.paper_shape
    result = {
        "benchmark": "cost_model_paper",
        "command": "python benchmarks/cost_model.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "grid_source": source,
        "per_image_source": f"{shown} ({shape_record['date']}, {shape_record['machine']['cpu']}, "
                            f"{shape_record['machine']['cores']} cores, shared; no GPU)",
        "per_image_cpu_ms": {case: {op: round(1000 * v, 3) for op, v in c.items()} for case, c in costs["shapes"].items()},
        "loading_cpu_ms_per_image": {k: round(1000 * v, 3) for k, v in costs["loading"].items()},
        "cue_bpp_assumed": CUE_BPP,
        "gpu": {**GPU, "gpu_over_cpu_ratio": round(ratio, 1), "assumption": True},
        "safety_factor": args.safety,
        "jobs": len(rows),
        "total_gpu_hours": round(total_gpu, 1),
        "total_cpu_hours_this_machine": round(sum(r["cpu_hours"] for r in rows), 1),
        "rows": rows,
        "resources": res,
    }
    print(f"{len(rows)} jobs from {source}: {total_gpu:.1f} GPU-hours on the assumed {GPU['name']} "
          f"(GPU/CPU ratio {ratio:.0f}); {result['total_cpu_hours_this_machine']:.0f} CPU-hours here")
    if args.out:
        write(result, args.out)
    if args.resources:
        args.resources.parent.mkdir(parents=True, exist_ok=True)
        header = (f"# SLURM resources per training job, keyed by the run's label (data set or MedMNIST flag)\n"
                  f"# and method; every budget, seed and protocol of the pair takes the largest): runtime in minutes (GPU estimate x{args.safety}, at least {args.min_minutes}),\n"
                  "# mem_mb (projected host memory of the full job, results/benchmarks/paper_shape.md), cpus_per_task\n"
                  "# (loader workers that keep the GPU fed, plus the main process; the job runs train.threads = cpus_per_task).\n"
                  f"# Written by: {result['command']}\n"
                  "# From per-image costs measured at full shape on a CPU and an ASSUMED GPU/CPU ratio: see\n"
                  "# results/benchmarks/cost_model_paper.md and docs/paper_grid.md.\n")
        args.resources.write_text(header + yaml.safe_dump(res, sort_keys=True, default_flow_style=None))
    return result


def write(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    by_pair: dict[tuple, list] = {}
    for r in result["rows"]:
        by_pair.setdefault((r["dataset"], r["data"], r["protocol"], r["method"]), []).append(r)
    lines = [
        "# Cost model of the paper grid", "",
        f"Command: `{result['command']}`", "",
        f"Grid: {result['grid_source']}. Per-image CPU costs from the full-shape runs: {result['per_image_source']}.", "",
        f"GPU: {result['gpu']['name']}; {result['gpu']['source']}. GPU/CPU throughput ratio "
        f"{result['gpu']['gpu_over_cpu_ratio']} (ASSUMED, not calibrated on a GPU), applied to training, "
        "evaluation, codec training and the codec's transforms; the rANS coder's share of encoding and recall "
        "(`CODER_SHARE`, measured apart at 64 px: about 10%) stays at CPU speed.", "",
        f"**{result['jobs']} jobs, {result['total_gpu_hours']} GPU-hours in total** "
        f"({result['total_cpu_hours_this_machine']} CPU-hours at this machine's speed).", "",
        "Assumptions beyond the GPU ratio: image counts per data set (`DATA_SIZES`), BrainCL cues at "
        f"{result['cue_bpp_assumed']} bpp, JPEG replay at 10x compression, distillation teachers cost one "
        "forward per training image, the loader (train.num_workers workers at this CPU's per-core speed, "
        "loading cost per format below) bounds each training step from below, protocols that shrink the training set (long-tail) are costed at "
        "full size. Each method's image counts are in `job_work` and in the JSON rows.", "",
        "## Per-image CPU cost at full shape (ms; train includes reading and augmentation on one core)", "",
        "| shape (paper_shape case) | operation | ms |", "|---|---|---:|",
        *[f"| {case} | {k} | {v} |" for case, c in result["per_image_cpu_ms"].items() for k, v in c.items()], "",
        "Loading and augmentation, CPU ms per image on one core: "
        + ", ".join(f"{k} {v}" for k, v in result["loading_cpu_ms_per_image"].items()) + ".", "",
        "## GPU-hours per dataset and method (all budgets and seeds)", "",
        "| data | protocol | method | jobs | GPU-hours (sum) | slowest job (h) | `dataset/method`: runtime (min) | mem_mb | cpus_per_task |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (d, data, proto, m), rs in sorted(by_pair.items()):
        key = f"{data}/{m}"
        lines.append(f"| {data} | {proto} | {m}{' (loader-bound)' if any(r['loader_bound'] for r in rs) else ''} | "
                     f"{len(rs)} | {sum(r['gpu_hours'] for r in rs):.2f} | "
                     f"{max(r['gpu_hours'] for r in rs):.3f} | {result['resources'][key]['runtime']} | "
                     f"{result['resources'][key]['mem_mb']} | {result['resources'][key]['cpus_per_task']} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
