"""Every paper experiment file run for real on the CPU at its true shape, with only the image counts cut.

1. Fixtures in the real on-disk formats at the real image sizes (``tests/fixtures_data.py``'s
   writers): an ILSVRC2012 tree of the 100 ImageNet-100 (PODNet list) wnid folders with 500x375
   JPEGs, a CORe50 ``core50_128x128/s1..s11/o1..o50/C_ss_oo_fff.png`` tree of 128-px PNGs, and
   MedMNIST npz files (BloodMNIST at 224 px, OrganAMNIST at 28 px) with the official keys.
2. Each ``config/experiments/*_paper.yaml`` case runs through ``braincl.runner.run_experiment`` in a
   child process, with the paper's backbone, stem, codec (N, M, depth, precision), resolution,
   transforms and budget. What is cut is listed in ``CUTS`` and written into the outputs.
3. The child records, per task and phase (data loading, codec training, encoding, wake, transfer
   to long-term memory, sleep, training, buffer update, evaluation), the wall time, the images
   processed and the peak resident memory of that phase: Linux's VmHWM, reset at each phase
   boundary through ``/proc/self/clear_refs`` (where the kernel refuses, the peak since the start).
   The parent reads the child's whole-run ``ru_maxrss`` from ``os.wait4``. From the run record:
   cue bytes per image, decoder and entropy-table bytes, long-term cues against the budget.
4. ``project`` turns the measurements into the host memory of a full paper job (``docs/paper_grid.md``):
   the measured fixed part (interpreter, model, codec, one batch) plus the uint8 arrays the code
   holds at full image counts, with and without ``braincl.memory.spill`` (memory-mapped arrays).

    python benchmarks/paper_shape.py --out results/benchmarks/paper_shape
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

# The paper experiment files, one case per data set shape (all four MedMNIST paper files share one
# shape: 224 px; OrganAMNIST also runs at 28 px, the size the other MedMNIST files of the suite use).
CASES = [
    {"case": "imagenet100_224", "experiment": "config/experiments/imagenet100_paper.yaml", "fixture": "imagenet",
     "sets": {"dataset.params.max_train_per_class": 3}},
    {"case": "core50_128", "experiment": "config/experiments/core50_paper.yaml", "fixture": "core50",
     "sets": {"dataset.params.max_train_per_class": 3}},
    {"case": "bloodmnist_224", "experiment": "config/experiments/medmnist_blood_paper.yaml", "fixture": "medmnist",
     "sets": {}},
    {"case": "organamnist_28", "experiment": "config/experiments/medmnist_organa_paper.yaml", "fixture": "medmnist",
     "sets": {"dataset.params.size": 28}},
]
METHODS = ["braincl", "er"]
# Everything that differs from the paper file besides the data root. Image counts: 3 training images
# per class (ImageNet-100, CORe50: max_train_per_class) or the fixture's 8 (MedMNIST); the loop
# lengths follow from them.
CUTS = {
    "scenario.num_tasks": 2,          # 2 of 10 / 9 / 4-6 tasks
    "train.epochs": 1,                # paper: 30-100
    "train.batch_size": 16,           # paper: 128; with 3-8 images per class a 128 batch never fills (drop_last)
    "train.num_workers": 0,           # paper: 8 loader processes; 2 shared cores here
    "train.persistent_workers": False,
    "train.threads": 2,
    "train.progress": False,
    # paper: 0.05-0.1. Per-image cost does not depend on it; at the paper's lr, or at it scaled
    # linearly to the cut batch (6.25e-3), sleep diverged (loss nan) on the synthetic OrganAMNIST-28 fixture.
    "train.optimizer.lr": 0.001,
}
BRAINCL_CUTS = {"method.params.codec_epochs": 1}  # paper: 10 codec epochs
FIXTURE = {"imagenet_train": 3, "imagenet_val": 1, "imagenet_size": (375, 500), "core50_frames": 1,
           "medmnist_per_class": {"train": 8, "val": 1, "test": 2}}


# ---------------------------------------------------------------------------------------- fixtures
def write_fixtures(root: Path) -> dict:
    """Write every fixture under ``root`` (skipped where already written); returns {fixture: root}."""
    from fixtures_data import write_core50, write_imagenet_tree, write_medmnist

    from braincl.data.imagenet100 import CLASS_LIST_DIR, read_class_list

    roots = {"imagenet": root / "imagenet", "core50": root / "core50" / "core50_128x128", "medmnist": root / "medmnist"}
    if not (roots["imagenet"] / "val").is_dir():
        wnids = read_class_list(CLASS_LIST_DIR / "imagenet100_podnet.txt")
        write_imagenet_tree(roots["imagenet"], wnids, n_train=FIXTURE["imagenet_train"], n_val=FIXTURE["imagenet_val"],
                            size=FIXTURE["imagenet_size"])
    if not roots["core50"].is_dir():
        write_core50(root / "core50", sessions=list(range(1, 12)), objects=list(range(1, 51)), frames=FIXTURE["core50_frames"])
    for flag, size in (("bloodmnist", 224), ("organamnist", 28)):
        name = f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"
        if not (roots["medmnist"] / name).is_file():
            write_medmnist(roots["medmnist"], flag, size=size, per_class=FIXTURE["medmnist_per_class"])
    return {k: str(v) for k, v in roots.items()}


def fixture_summary(roots: dict) -> dict:
    """Files and bytes on disk per fixture (what the loaders read)."""
    out = {}
    for name, path in roots.items():
        files = [p for p in Path(path).rglob("*") if p.is_file()]
        out[name] = {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}
    return out


# ---------------------------------------------------------------------------------------- child
class PhaseTracker:
    """Wall time, images and peak resident memory per (task, phase). Phases may nest (a recall inside
    the transfer to long-term memory): each boundary folds the peak so far into every open phase,
    then resets the kernel's high-water mark; a parent's time excludes its nested phases."""

    def __init__(self):
        self.rows: list[dict] = []
        self.open: list[dict] = []
        self.task = 0
        self.resettable = self._reset()

    @staticmethod
    def _hwm() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    @staticmethod
    def _reset() -> bool:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # Linux >= 4.0: reset VmHWM to the current RSS
            return True
        except OSError:
            return False

    def _boundary(self) -> None:
        peak = self._hwm()
        for row in self.open:
            row["peak_rss_bytes"] = max(row["peak_rss_bytes"], peak)
        self._reset()

    def start(self, phase: str) -> dict:
        self._boundary()
        row = {"task": self.task, "phase": phase, "images": 0, "seconds": 0.0, "nested_s": 0.0,
               "peak_rss_bytes": 0, "t0": time.perf_counter()}
        self.open.append(row)
        return row

    def stop(self, row: dict, images: int) -> None:
        self._boundary()
        self.open.remove(row)
        total = time.perf_counter() - row.pop("t0")
        row["seconds"] = round(total - row.pop("nested_s"), 3)
        row["images"] = int(images)
        for parent in self.open:
            parent["nested_s"] += total
        self.rows.append(row)

    def wrap(self, owner, name: str, phase, images):
        """Replace ``owner.name`` by a timed version. ``phase``: a name or fn(args, kwargs);
        ``images``: fn(result, args, kwargs) -> images processed."""
        inner = getattr(owner, name)

        def timed(*args, **kwargs):
            row = self.start(phase(args, kwargs) if callable(phase) else phase)
            done, result = False, None
            try:
                result = inner(*args, **kwargs)
                done = True
                return result
            finally:
                self.stop(row, images(result, args, kwargs) if done else 0)

        setattr(owner, name, timed)


def instrument(tracker: PhaseTracker) -> None:
    import braincl.codec as codec
    import braincl.evaluate as evaluate
    import braincl.memory.cues as cues
    import braincl.memory.spill as spill
    import braincl.runner as runner
    from braincl.engine import Engine
    from braincl.learner import Learner
    from braincl.methods.braincl import BrainCL
    from braincl.methods.er import ReplayLearner

    tracker.wrap(runner, "build_data", "build data", lambda r, a, k: len(r.train.targets) + len(r.test.targets))
    tracker.wrap(spill, "read_images", "load", lambda r, a, k: len(r))
    tracker.wrap(codec, "train_codec", "codec", lambda r, a, k: r["steps"] * min(k.get("batch_size", 16), len(a[1])))
    tracker.wrap(codec, "encode", "encode", lambda r, a, k: len(r[0]))
    tracker.wrap(cues.CueStore, "recall", "recall", lambda r, a, k: len(r[1]))
    tracker.wrap(Engine, "fit", lambda a, k: k.get("phase", "train"), lambda r, a, k: r["samples"])
    tracker.wrap(BrainCL, "transfer_to_long_term", "transfer", lambda r, a, k: len(a[1].train.indices))
    tracker.wrap(ReplayLearner, "update_buffer", "buffer", lambda r, a, k: len(a[1].train.indices))
    tracker.wrap(evaluate, "evaluate_seen_tasks",
                 "eval", lambda r, a, k: sum(len(a[1].task(j).test.indices) for j in range(a[2] + 1)))
    begin = Learner.begin_task

    def begin_task(self, task, *args, **kwargs):
        tracker.task = task.index
        return begin(self, task, *args, **kwargs)

    Learner.begin_task = begin_task


def child(spec: dict) -> dict:
    """Run one case in this process and return its measurements."""
    import torch

    from braincl import config
    from braincl.runner import run_experiment

    tracker = PhaseTracker()
    instrument(tracker)
    sets = [f"{k}={v}" for k, v in spec["sets"].items()]
    cfg = config.load(ROOT / spec["experiment"], sets)
    t0 = time.perf_counter()
    record = run_experiment(cfg, Path(spec["out"]), log=lambda *_: None)
    wall = time.perf_counter() - t0
    mem = record["memory"]
    info = record.get("method_info") or {}
    return {
        "phases": tracker.rows, "wall_s": round(wall, 1), "hwm_resettable": tracker.resettable,
        "rss_after_data_bytes": next(r["peak_rss_bytes"] for r in tracker.rows if r["phase"] == "build data"),
        "torch_threads": torch.get_num_threads(),
        "memory_per_task": [{"task": i, **m["bytes"], "charged_bytes": m["charged_bytes"]} for i, m in enumerate(mem["per_task"])],
        "budget_bytes": mem["budget_bytes"],
        "per_task_info": info.get("per_task", []),
        "accuracy_last": record["summary"]["last_acc_sample"],
        "resolved": {"resolution": cfg["dataset"]["params"].get("resolution") or cfg["dataset"]["params"].get("size"),
                     "backbone": cfg["model"]["backbone"], "model_params": cfg["model"]["params"],
                     "codec": {k: cfg["method"]["params"].get(k) for k in ("N", "M", "depth", "decoder_precision",
                                                                             "max_cdf_length", "codec_epochs", "lambda")}
                     if cfg["method"]["name"] == "braincl" else None,
                     "budget": cfg["memory"]["budget"], "batch_size": cfg["train"]["batch_size"],
                     "amp": cfg["train"]["amp"], "channels_last": cfg["train"]["channels_last"]},
    }


# ---------------------------------------------------------------------------------------- parent
def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpu": model, "cores": os.cpu_count(), "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()],
            "memory_total_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
            "python": platform.python_version(), "gpu": "none (no GPU run exists)"}


def run_case(case: dict, method: str, roots: dict, work: Path, timeout: int) -> dict:
    import torch

    sets = {"dataset.root": roots[case["fixture"]], **case["sets"], **CUTS,
            "method.name": method, **(BRAINCL_CUTS if method == "braincl" else {})}
    spec = {"experiment": case["experiment"], "sets": sets, "out": str(work / f"{case['case']}_{method}")}
    spec_file = work / f"{case['case']}_{method}.json"
    spec_file.write_text(json.dumps(spec))
    result_file = spec_file.with_suffix(".out.json")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(CUTS["train.threads"]), "BRAINCL_SPILL": "never"}
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(spec_file), str(result_file)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t0 = time.time()
    _, status, usage = os.wait4(proc.pid, 0)
    output = proc.stdout.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"paper_shape: {case['case']} {method} failed (exit {proc.returncode}):\n{output[-3000:]}")
    result = json.loads(result_file.read_text())
    result.update(case=case["case"], experiment=case["experiment"], method=method, cuts=sets,
                  child_ru_maxrss_bytes=usage.ru_maxrss * 1024, child_wall_s=round(time.time() - t0, 1),
                  torch_version=torch.__version__)
    result["cuts"].pop("dataset.root")
    return result


def run_peak(r: dict) -> int:
    """Peak RSS of the whole run: the largest phase peak. Resetting VmHWM (clear_refs) also resets the
    high-water mark that the child's ``ru_maxrss`` reports, so that alone would miss earlier phases."""
    return max([r["child_ru_maxrss_bytes"], *(p["peak_rss_bytes"] for p in r["phases"])])


def summarise(r: dict) -> dict:
    """Per phase over the run's tasks: seconds per image (exclusive of nested phases), peak RSS."""
    by: dict[str, dict] = {}
    for row in r["phases"]:
        s = by.setdefault(row["phase"], {"images": 0, "seconds": 0.0, "peak_rss_bytes": 0})
        s["images"] += row["images"]
        s["seconds"] += row["seconds"]
        s["peak_rss_bytes"] = max(s["peak_rss_bytes"], row["peak_rss_bytes"])
    for s in by.values():
        s["s_per_image"] = round(s["seconds"] / s["images"], 5) if s["images"] else None
        s["seconds"] = round(s["seconds"], 3)
    return by


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks" / "paper_shape")
    ap.add_argument("--fixtures", type=Path, help="where to write the data fixtures (default: a temporary folder)")
    ap.add_argument("--cases", nargs="*", help="case names to run (default: all)")
    ap.add_argument("--methods", nargs="*", default=METHODS)
    ap.add_argument("--timeout", type=int, default=1800)
    ap.add_argument("--render", type=Path, help="only rewrite OUT.{md,json} (summaries, projection) from this record")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.render:
        record = json.loads(args.render.read_text())
        for r in record["runs"]:
            r["by_phase"] = summarise(r)
        record["projection"] = project(record)
        write(record, args.out)
        return record
    if args.child:
        spec = json.loads(Path(args.child[0]).read_text())
        Path(args.child[1]).write_text(json.dumps(child(spec)))
        return {}
    unknown = set(args.cases or []) - {c["case"] for c in CASES}
    if unknown:
        raise SystemExit(f"paper_shape: unknown case(s) {sorted(unknown)}; valid: {[c['case'] for c in CASES]}")
    cases = [c for c in CASES if not args.cases or c["case"] in args.cases]
    with tempfile.TemporaryDirectory(prefix="paper-shape-") as tmp:
        fixtures = args.fixtures or Path(tmp) / "data"
        t0 = time.time()
        roots = write_fixtures(fixtures)
        fixture_s = time.time() - t0
        results = []
        for case in cases:
            for method in args.methods:
                print(f"paper_shape: {case['case']} {method} ...", flush=True)
                r = run_case(case, method, roots, Path(tmp), args.timeout)
                r["by_phase"] = summarise(r)
                results.append(r)
                print(f"  {r['child_wall_s']} s, peak RSS {r['child_ru_maxrss_bytes'] / 2**20:.0f} MiB", flush=True)
        fixtures_info = {"written_in_s": round(fixture_s, 1), "layout": FIXTURE, "on_disk": fixture_summary(roots)}
    record = {
        "benchmark": "paper_shape",
        "command": "python benchmarks/paper_shape.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "cuts": {**{k: v for k, v in CUTS.items()}, **BRAINCL_CUTS, "images": "3 training images per class "
                 "(ImageNet-100, CORe50: max_train_per_class) or 8 (MedMNIST fixture); 1 ImageNet validation image "
                 "per class, 3 CORe50 test frames per object, 2 MedMNIST test images per class"},
        "fixtures": fixtures_info,
        "runs": results,
    }
    record["projection"] = project(record)
    if args.out:
        write(record, args.out)
    return record


# ---------------------------------------------------------------------------------------- full-job memory
# Decoded cue bytes per image at full size use an ASSUMED rate: bmshj2018-factorized at lambda = 0.01
# codes natural images at about 0.3-0.6 bpp (CompressAI's published rate-distortion curves); the
# codecs measured above had one epoch on synthetic images and say nothing about trained rates.
CUE_BPP = 0.5
SAFETY = 1.25               # request = projected peak x this, rounded up to a whole GiB
MEASURED_CASE = {"imagenet100": "imagenet100_224", "core50": "core50_128", 224: "bloodmnist_224", 28: "organamnist_28"}


def split_sizes(cfg: dict) -> dict:
    """Images per split of the full data set, classes and channels."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from cost_model import DATA_SIZES

    name, params = cfg["dataset"]["name"], cfg["dataset"].get("params") or {}
    if name == "medmnist":
        from medmnist import INFO

        info = INFO[params["flag"]]
        n = info["n_samples"]
        return {"train": n["train"], "resident": n["train"] + n["val"] + n["test"], "classes": len(info["label"]),
                "channels": int(info["n_channels"])}
    d = DATA_SIZES[name]
    return {"train": d["train"], "resident": 0, "classes": d["classes"], "channels": d["channels"]}


def project_job(cfg: dict, method: str, fixed: int, request_cap: int) -> dict:
    """Host memory of one full paper job (bytes): the measured fixed part, the data set's arrays
    held in RAM (MedMNIST: every split), and BrainCL's uint8 arrays at the phase where they peak.
    ``before``: the code before ``braincl.memory.spill`` (a task's float copy in codec training,
    ``torch.stack`` beside its image list, each decoded store built twice); ``after``: one array
    each, in RAM while the job's memory holds it, else memory-mapped."""
    from braincl.units import parse_bytes
    from memory_scaling import codec_nbytes

    sizes = split_sizes(cfg)
    res = int(cfg["dataset"]["params"].get("resolution") or cfg["dataset"]["params"].get("size"))
    img = sizes["channels"] * res * res
    sc = cfg["scenario"]
    first, inc = int(sc["initial_classes"]), int(sc["increment"])
    tasks = 1 + -(-(sizes["classes"] - first) // inc)
    per_class = sizes["train"] / sizes["classes"]
    n_task = round(max(first, inc) * per_class)
    budget = parse_bytes(cfg["memory"]["budget"])
    data = sizes["resident"] * img
    row = {"images_per_task": n_task, "tasks": tasks, "image_bytes": img, "dataset_in_ram_bytes": data,
           "fixed_bytes": fixed}
    if method == "braincl":
        p = cfg["method"]["params"]
        dec, tab = codec_nbytes(sizes["channels"], p["N"], p["M"], p["depth"], p["decoder_precision"], p["max_cdf_length"], res)
        cue = res * res * CUE_BPP / 8 + 8
        ltm = int(min(max(0, budget - tasks * (dec + tab)) // cue, sizes["train"]))
        before = max(5 * n_task * img, (ltm + 2 * n_task) * img)
        after = max(n_task * img, (ltm + n_task) * img)
        row.update(decoder_bytes_per_task=dec, table_bytes_per_task=tab, cue_bytes_assumed=round(cue),
                   ltm_cues_last_task=ltm, arrays_before_bytes=before, arrays_after_bytes=after)
    else:  # raw exemplars: the buffer is the budget; training images stream from the loader
        before = after = min(budget, sizes["train"] * img)
        row.update(arrays_before_bytes=before, arrays_after_bytes=after)
    row["peak_before_bytes"] = fixed + data + before
    row["peak_after_in_ram_bytes"] = fixed + data + after
    need = math.ceil(SAFETY * row["peak_after_in_ram_bytes"] / 2**30) * 2**30
    row["request_bytes"] = min(need, request_cap)
    row["spills"] = need > request_cap
    from braincl.memory.spill import RESIDENT_SHARE

    row["peak_after_bytes"] = (min(row["peak_after_in_ram_bytes"], fixed + data + RESIDENT_SHARE * request_cap)
                               if row["spills"] else row["peak_after_in_ram_bytes"])
    return row


def project(record: dict, grid: Path = ROOT / "config" / "paper.yaml", request_cap: int = 64 * 2**30) -> list[dict]:
    """Every (data set, budget, method) of the paper grid for the measured methods."""
    import yaml

    from braincl import config

    runs = {(r["case"], r["method"]): r for r in record["runs"]}
    out = []
    for entry in yaml.safe_load(grid.read_text())["grid"]:
        if entry.get("protocol", "cil") != "cil":
            continue
        for method in METHODS:
            for budget in entry["budgets"]:
                cfg = config.load(ROOT / entry["experiment"], [f"method.name={method}", f"memory.budget={budget}"])
                res = int(cfg["dataset"]["params"].get("resolution") or cfg["dataset"]["params"].get("size"))
                case = MEASURED_CASE.get(entry["dataset"], MEASURED_CASE.get(res))
                measured = runs.get((case, method))
                if measured is None:
                    continue
                row = project_job(cfg, method, run_peak(measured), request_cap)
                out.append({"data": entry.get("label") or entry["dataset"], "method": method, "budget": budget,
                            "resolution": res, "fixed_from": case, **row})
    return out


def projection_lines(rows: list[dict]) -> list[str]:
    g = lambda b: f"{b / 2**30:.1f}"  # noqa: E731
    lines = ["## Host memory of a full paper job (projected)", "",
             "Fixed part: the largest phase peak RSS measured above for the same shape and method (interpreter, torch, "
             "model, codec and, on this CPU, a 16-image batch's activations, which a GPU job keeps on the device). "
             "Plus the arrays the code holds at full image counts: MedMNIST keeps all three splits in RAM; "
             "BrainCL keeps a task's training images while its codec trains, and decodes a phase's cues at once "
             f"(`cache_recall`), long-term cues at an assumed {CUE_BPP} bpp. *Before*: the code before "
             "`braincl.memory.spill` (a float copy of the task in codec training = 4 B per pixel, `torch.stack` "
             "beside its list, each decoded store built twice). *After*: one uint8 array each; where the "
             f"request (peak x {SAFETY}, capped at the grid's old 64 GB) cannot hold them, they are memory-mapped and "
             f"resident arrays stay under {int(100 * 0.6)}% of it. GiB:", "",
             "| data | px | method | budget | images/task | long-term cues (last task) | decoders+tables / task (B) | peak before | peak after | request | memory-mapped |",
             "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['data']} | {r['resolution']} | {r['method']} | {r['budget']} | {r['images_per_task']:,} | "
                     f"{r.get('ltm_cues_last_task', '-'):{',' if 'ltm_cues_last_task' in r else ''}} | "
                     f"{(r['decoder_bytes_per_task'] + r['table_bytes_per_task']) if 'decoder_bytes_per_task' in r else '-'} | "
                     f"{g(r['peak_before_bytes'])} | {g(r['peak_after_bytes'])} | {g(r['request_bytes'])} | "
                     f"{'yes' if r['spills'] else 'no'} |")
    return lines


def _mib(b) -> str:
    return f"{b / 2**20:,.0f}"


def write(record: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    m = record["machine"]
    lines = [
        "# Paper configs at their true shape (CPU)", "",
        f"Command: `{record['command']}`  ", f"Date: {record['date']}  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, load average {m['load_avg_1_5_15']} at the end (shared with "
        f"other work), {_mib(m['memory_total_bytes'])} MiB RAM, Python {m['python']}. GPU: {m['gpu']}.", "",
        "Each paper experiment file ran end to end through `braincl.runner.run_experiment` with the paper's "
        "backbone, stem, resolution, transforms, codec and budget. What was cut: " +
        ", ".join(f"`{k}={v}`" for k, v in record["cuts"].items() if k != "images") + f"; {record['cuts']['images']}. "
        "On a CPU `amp` is ignored (CUDA only) and `channels_last` applies (docs/gpu.md). Fixtures: "
        + ", ".join(f"{k} {v['files']} files, {_mib(v['bytes'])} MiB" for k, v in record["fixtures"]["on_disk"].items())
        + ". Seconds are wall time on this shared machine: indicative, and the codec is barely trained, so its "
        "cue bytes are those of a 1-epoch codec on synthetic images, not of a trained one on real data.", "",
        "## Per run", "",
        "| case | method | px | wall (s) | peak RSS, largest phase (MiB) | RSS after data (MiB) | last acc | decoder B/task | tables B/task | cue B/image | long-term cues / budget |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in record["runs"]:
        info = r["per_task_info"][-1] if r["per_task_info"] else {}
        last = r["memory_per_task"][-1]
        lines.append(
            f"| {r['case']} | {r['method']} | {r['resolved']['resolution']} | {r['child_wall_s']} | {_mib(run_peak(r))} | "
            f"{_mib(r['rss_after_data_bytes'])} | {r['accuracy_last']:.3f} | {info.get('decoder_bytes', '-')} | "
            f"{info.get('table_bytes', '-')} | {round(info['mean_cue_bytes']) if 'mean_cue_bytes' in info else '-'} | "
            f"{info.get('ltm_cues', '-') if r['method'] == 'braincl' else '-'} cues, "
            f"{last['cues'] + last['exemplars']:,} B of {r['budget_bytes']:,} B ({last['charged_bytes']:,} B charged) |")
    lines += ["", "## Per phase (summed over the 2 tasks; seconds exclude nested phases)", "",
              "| case | method | phase | images | seconds | s / image | peak RSS (MiB) |", "|---|---|---|---:|---:|---:|---:|"]
    for r in record["runs"]:
        for phase, s in r["by_phase"].items():
            lines.append(f"| {r['case']} | {r['method']} | {phase} | {s['images'] or '-'} | {s['seconds']} | "
                         f"{s['s_per_image'] if s['s_per_image'] is not None else '-'} | {_mib(s['peak_rss_bytes'])} |")
    lines += ["", *projection_lines(record["projection"])]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
