"""Run one experiment: build everything from the config, train task by task, evaluate, checkpoint
after each task, and write ``metrics.json`` once at the end.

Resume: a killed run leaves ``checkpoint.pt`` (written atomically after each finished task). The
same command resumes at the first unfinished task; each task re-seeds from (seed, task), so the
result equals that of an uninterrupted run. ``metrics.json`` only ever appears complete.

The checkpoint carries a SHA-256 of its payload (``braincl.checkpoint``), and every stored cue is
checked against its CRC32 when the checkpoint is loaded. A run refused before training leaves no
folder behind; one that fails while training keeps its ``train.log``, which says why.

While it runs, ``braincl.loggers`` writes ``train.log``, ``steps.csv`` and ``tasks.csv`` beside the
record, plus TensorBoard or W&B logs when ``log:`` asks for them."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from . import config as config_mod
from .units import parse_bytes

CHECKPOINT = "checkpoint.pt"
MEMORY_POLICY = ("Charged: every byte a method keeps between tasks (exemplars with labels and stored "
                 "logits, cues with metadata, decoders and generators at their stored precision, entropy "
                 "tables, regulariser state). Not charged: the network being trained, and - unless "
                 "memory.charge_teacher is true - the frozen teacher copy of the previous model, which is "
                 "reported under 'teacher'; and checksums that no decoding needs (BrainCL's per-cue CRC32), "
                 "reported under 'integrity'.")


def config_fingerprint(cfg: dict) -> str:
    """Hash of everything that changes results (not progress bars, worker counts or loggers)."""
    relevant = json.loads(json.dumps(cfg))
    relevant.pop("log", None)
    for key in ("progress", "num_workers", "pin_memory", "persistent_workers"):
        relevant.get("train", {}).pop(key, None)
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def build_data(cfg: dict):
    """The data set's splits, with the validation split of ``dataset.validation`` (carved from the
    training data or the data set's own); what was done is recorded in ``info["validation"]``."""
    from .data.base import carve_validation
    from .registry import DATASETS

    builder = DATASETS.get(cfg["dataset"]["name"])
    splits = builder(cfg["dataset"].get("root"), dict(cfg["dataset"].get("params") or {}))
    splits, validation = carve_validation(splits, cfg["dataset"].get("validation"))
    splits.info = {**splits.info, "validation": validation}
    return splits


@dataclass
class PreparedRun:
    """Everything a run is built from, before its first task."""

    learner: object
    scenario: object
    splits: object
    protocols: list
    engine: object
    budget_bytes: int | None
    cfg: dict | None = None   # the config with the values derived from the data filled in


def prepare_run(cfg: dict, splits=None) -> PreparedRun:
    """Seed, build the data (or take ``splits``), protocols, scenario, transforms, budget, model,
    engine and learner, and let the learner refuse an impossible budget. Data and protocols come
    first, so that a missing data set fails before anything else is built."""
    import torch

    from .data.auto import adapt_to_images, check_image_shapes
    from .data.transforms import build_transform
    from .engine import Engine, resolve_device
    from .learner import RunContext
    from .memory import Budget
    from .models.net import build_model
    from .protocols import build_protocols
    from .registry import METHODS
    from .scenario import Scenario
    from .seeding import seed_everything
    from .sizing import fill_method_params

    if cfg["train"].get("threads"):
        torch.set_num_threads(int(cfg["train"]["threads"]))
    if cfg["train"].get("deterministic", True):
        torch.use_deterministic_algorithms(True, warn_only=True)
    device = resolve_device(cfg.get("device", "auto"))
    seed = int(cfg["seed"])
    seed_everything(seed)

    splits = splits if splits is not None else build_data(cfg)
    cfg, derived = adapt_to_images(cfg, splits)  # `auto` data defaults, resolved from the images
    protocols = build_protocols(cfg)
    held_out = sorted({c for p in protocols for c in p.exclude_classes(splits)})
    try:
        scenario = Scenario.from_config(splits, cfg["scenario"], exclude_classes=held_out)
    except ValueError as err:
        message = str(err)
        raise config_mod.ConfigError(message if message.startswith("scenario.") else f"scenario: {message}") from None
    tcfg = cfg["dataset"]["transforms"]
    # uint8 pipelines: the model normalises each batch itself (braincl.models.net.InputNormalize)
    train_tf = build_transform(tcfg.get("train", []))
    eval_tf = build_transform(tcfg.get("eval", []))
    check_image_shapes(splits, train_tf, eval_tf)
    check_eval_split(cfg, scenario)
    image_shape = (splits.train.channels, *splits.train.size)

    budget_bytes = None if cfg["memory"].get("budget") is None else parse_bytes(cfg["memory"]["budget"])
    cfg, sized = fill_method_params(cfg, image_shape, budget_bytes, scenario.num_tasks)
    splits.info = {**splits.info, "derived": {**derived, **({"method_params": sized} if sized else {})}}
    budget = Budget(budget_bytes, charge_teacher=bool(cfg["memory"].get("charge_teacher")))
    model = build_model(cfg, image_shape[0], image_shape[1])
    engine = Engine(cfg["train"], device)
    ctx = RunContext(cfg=cfg, seed=seed, num_tasks=scenario.num_tasks, num_classes=scenario.num_classes,
                     image_shape=image_shape, train_transform=train_tf, eval_transform=eval_tf,
                     dataset_name=cfg["dataset"]["name"])
    learner = METHODS.get(cfg["method"]["name"])(model, engine, budget, cfg["method"].get("params") or {}, ctx)
    learner.setup()
    return PreparedRun(learner, scenario, splits, protocols, engine, budget_bytes, cfg)


def check_eval_split(cfg: dict, scenario) -> None:
    """``eval.split: val`` needs validation images of every class in every task."""
    split = cfg["eval"].get("split", "test")
    if split != "val":
        return
    if scenario.splits.val is None:
        raise config_mod.ConfigError("eval.split=val, but dataset.validation.source is none: set it to auto, train "
                                     "or official to have a validation split")
    for t in range(scenario.num_tasks):
        task = scenario.task(t)
        missing = sorted(set(task.classes) - set(task.val.labels.tolist()))
        if missing:
            names = [scenario.splits.class_names[scenario.class_order[c]] for c in missing]
            raise config_mod.ConfigError(f"eval.split=val, but class(es) {', '.join(names)} of task {t + 1} have no "
                                         "validation image: raise dataset.validation.fraction or per_class")


def preflight(cfg: dict, splits=None) -> PreparedRun:
    """Every check a run makes before training: the transforms, then everything ``prepare_run``
    builds (data, scenario, model, learner and its budget refusal). ``braincl validate`` and
    ``run_experiment`` both go through here, so they accept and refuse the same configs. A
    ``ValueError`` while building from the config is the config's fault and becomes a ConfigError."""
    from .data.transforms import check_transforms
    from .loggers import check_config as check_loggers

    try:
        check_transforms(cfg)
        check_loggers(cfg)
        return prepare_run(cfg, splits)
    except config_mod.ConfigError:
        raise
    except ValueError as err:
        raise config_mod.ConfigError(str(err)) from None


def check_out_dir(out_dir: str | Path) -> list[Path]:
    """Refuse an output folder that is a file or cannot be written, before any work, by creating
    it and a probe file there and removing both again. Returns the folders that do not exist yet."""
    if not str(out_dir).strip():  # an unset $OUTDIR: Path("") is the current folder
        raise config_mod.ConfigError(
            f"output folder (--out) is {'empty' if not str(out_dir) else 'only spaces'}; give a folder path, "
            "e.g. --out results/scratch/run1")
    out_dir = Path(out_dir)
    # Runs started together on a new folder each create it, probe it and remove it again: a folder that
    # vanishes under one check was removed by another check, and the check looks again.
    attempts = 10
    for attempt in range(attempts):
        missing, node = [], out_dir
        while not node.exists() and node != node.parent:
            missing.append(node)
            node = node.parent
        if not node.is_dir():
            if not node.exists():
                continue  # removed between the two looks
            what = "is a file" if node == out_dir else f"lies under {node}, which is a file"
            raise config_mod.ConfigError(f"output folder (--out) {out_dir} {what}, not a folder; give a folder path")
        try:
            for folder in reversed(missing):
                folder.mkdir(exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=out_dir)
            os.close(fd)
            os.unlink(probe)
            return missing
        except OSError as err:
            # FileNotFoundError / FileExistsError on a folder: another check removed or made it under us
            # (a folder that can never be made, e.g. under /proc, fails every attempt and is reported)
            raced = isinstance(err, FileNotFoundError) or (
                isinstance(err, FileExistsError) and not (err.filename and Path(err.filename).is_file()))
            if not raced or attempt == attempts - 1:
                raise config_mod.ConfigError(
                    f"output folder (--out) {out_dir} cannot be written ({err.strerror or err}); choose a folder "
                    "you can write to") from None
        finally:
            _remove_empty(missing)
        time.sleep(0.01 * (attempt + 1))  # let the other check finish before looking again
    raise config_mod.ConfigError(f"output folder (--out) {out_dir} kept disappearing while it was checked; is "
                                 "another process removing it?")


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first
        try:
            folder.rmdir()
        except OSError:
            pass  # absent, or holds files: kept


def run_experiment(cfg: dict, out_dir: str | Path, *, resume: bool = True, keep_checkpoint: bool = False,
                   log=print) -> dict:
    """Run ``cfg`` into ``out_dir``. A run refused or failed before it wrote anything leaves no
    folder behind; one that failed later keeps its checkpoint, so that rerunning resumes."""
    from . import checkpoint, run_lock
    from .loggers import RunLog

    created = check_out_dir(out_dir)
    runlog = RunLog(echo=log)  # train.log, CSV and the configured loggers, opened once the run starts
    try:
        with run_lock.acquire(out_dir) as lock:  # one run per folder; refuses at once if another holds it
            if lock.previous:
                log(f"taking over {out_dir} from a run that ended without releasing it ({run_lock.describe(lock.previous)})")
            for name in (CHECKPOINT, "metrics.json"):  # temporary files of writes killed midway
                checkpoint.remove_stale_temporaries(Path(out_dir) / name)
            return _run(cfg, Path(out_dir), resume=resume, keep_checkpoint=keep_checkpoint, runlog=runlog)
    except BaseException as err:
        runlog.stopped(err)
        _remove_empty(created)
        raise
    finally:
        runlog.close()


def _run(cfg: dict, out_dir: Path, *, resume: bool, keep_checkpoint: bool, runlog) -> dict:
    from . import checkpoint
    from .compute import summarize as summarize_compute
    from .evaluate import evaluate_seen_tasks, square
    from .loggers import TaskResult
    from .memory.cues import find_stores
    from .metrics import summarize
    from .record import SCHEMA_VERSION, environment, validate_record, write_json
    from .seeding import derive_seed, seed_everything

    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / CHECKPOINT
    fingerprint = config_fingerprint(cfg)
    t_start = time.perf_counter()
    started = _now()

    run = preflight(cfg)
    cfg = run.cfg  # values derived from the data (auto defaults, sized codec) are recorded as run
    learner, scenario, splits, protocols = run.learner, run.scenario, run.splits, run.protocols
    engine, budget_bytes, seed = run.engine, run.budget_bytes, int(cfg["seed"])
    device, budget, ctx = engine.device, learner.budget, learner.ctx

    state = {"rows": {}, "per_class": [], "counts": [], "memory": [], "timings": [], "compute": [], "protocol_tasks": [],
             "attention": [], "next_task": 0, "resumed_from_task": None}
    if ckpt_path.exists() and resume:
        ckpt = checkpoint.load(ckpt_path, map_location=device)
        if not isinstance(ckpt, dict) or not {"fingerprint", "learner", "state"} <= set(ckpt):
            raise checkpoint.CheckpointError(
                f"checkpoint {ckpt_path} does not hold a run's state; delete it to restart the run from task 1, "
                "or restore it from a copy")
        if ckpt.get("fingerprint") != fingerprint:
            raise config_mod.ConfigError(
                f"{ckpt_path} belongs to a different config; delete it to start afresh, or rerun with the "
                "config that made it")
        learner.load_state_dict(ckpt["learner"])
        for store in find_stores(learner):  # a cue damaged on disk is caught here, not at its first recall
            store.source = str(ckpt_path)
            store.verify_all()
        state = ckpt["state"]
        state.setdefault("compute", [])  # a checkpoint from before compute was recorded
        state["resumed_from_task"] = state["next_task"]
    runlog.open(cfg, out_dir, scenario.num_tasks, resumed_at=state["resumed_from_task"], step=state.get("log_step", 0))
    engine.log = runlog
    if state["resumed_from_task"] is not None:
        runlog.message(f"resuming at task {state['next_task'] + 1}/{scenario.num_tasks} from {ckpt_path}", echo=True)

    want_attention = bool(cfg["eval"].get("attention", {}).get("enabled"))
    eval_split = cfg["eval"].get("split", "test")
    for t in range(state["next_task"], scenario.num_tasks):
        seed_everything(derive_seed(seed, "task", t))
        task = scenario.task(t)
        for p in protocols:
            task = p.adjust_task(task)
        info = [p.task_info(task) for p in protocols]
        state["protocol_tasks"].append({p.name: i for p, i in zip(protocols, info) if i is not None})
        t0 = time.perf_counter()
        engine.compute.task = t
        learner.begin_task(task)
        learner.train_task(task)
        learner.end_task(task)
        t1 = time.perf_counter()
        breakdown = learner.memory()
        budget.check(breakdown, f"{cfg['method']['name']} after task {t + 1}")
        last = t == scenario.num_tasks - 1
        result = evaluate_seen_tasks(learner, scenario, t, want_features=last and cfg["eval"].get("spectrum", True),
                                     split=eval_split)
        for name, r in result["rows"].items():
            state["rows"].setdefault(name, {"tag": [], "taw": []})
            state["rows"][name]["tag"].append(r["tag"])
            state["rows"][name]["taw"].append(r["taw"])
        state["per_class"].append(result["per_class"])
        state["counts"] = result["counts"]
        if "spectrum" in result:
            state["spectrum"] = result["spectrum"]
        if want_attention:
            from .attention import attention_maps

            state["attention"].append(attention_maps(learner, scenario, t, cfg["eval"]["attention"]))
        state["memory"].append(breakdown.as_dict(budget_bytes))
        state["timings"].append({"task": t, "train_s": round(t1 - t0, 3), "eval_s": round(time.perf_counter() - t1, 3)})
        state["compute"].append({"task": t, "phases": engine.compute.phases(t)})
        state["next_task"] = t + 1
        timing = state["timings"][-1]
        runlog.task_done(TaskResult(t, scenario.num_tasks, runlog.step, state["rows"]["main"]["tag"], state["counts"],
                                    state["memory"][-1], state["compute"][-1]["phases"], timing["train_s"],
                                    timing["eval_s"]))
        state["log_step"] = runlog.step
        if not last or keep_checkpoint:
            checkpoint.save(ckpt_path, {"fingerprint": fingerprint, "learner": learner.state_dict(), "state": state})

    T = scenario.num_tasks
    main = state["rows"]["main"]
    tag, taw = square(main["tag"], T), square(main["taw"], T)
    nan = float("nan")
    R = [[nan if v is None else v for v in row] for row in tag]
    accuracy = {"tag": tag, "taw": taw, "test_samples_per_task": state["counts"], "per_class": state["per_class"]}
    alternatives = {name: {"tag": square(r["tag"], T), "taw": square(r["taw"], T),
                           "summary": summarize([[nan if v is None else v for v in row] for row in square(r["tag"], T)],
                                                state["counts"])}
                    for name, r in state["rows"].items() if name != "main"}
    if alternatives:
        accuracy["alternatives"] = alternatives
    protocol_results = {}
    for p in protocols:
        res = p.evaluate_final(learner, scenario, engine, ctx)
        if res is not None:
            protocol_results[p.name] = res
        per_task = [pt.get(p.name) for pt in state["protocol_tasks"] if p.name in pt]
        if per_task:
            protocol_results.setdefault(p.name, {})["per_task"] = per_task
    analysis = {}
    if "spectrum" in state:
        analysis["feature_spectrum"] = state["spectrum"]
    if state["attention"]:
        analysis["attention"] = {"after_task": state["attention"]}
    record = {
        "schema_version": SCHEMA_VERSION,
        "run": {"method": cfg["method"]["name"], "dataset": cfg["dataset"].get("label") or cfg["dataset"]["name"],
                "dataset_loader": cfg["dataset"]["name"], "protocol": cfg.get("protocol", "cil"),
                "seed": seed, "budget_bytes": budget_bytes, "num_tasks": T, "started": started, "finished": _now(),
                "resumed_from_task": state["resumed_from_task"], "config_fingerprint": fingerprint},
        "config": cfg,
        "scenario": {**scenario.describe(), "dataset_info": splits.info},
        "accuracy": accuracy,
        "summary": summarize(R, state["counts"]),
        "memory": {"budget_bytes": budget_bytes, "per_task": state["memory"], "final": state["memory"][-1],
                   "policy": MEMORY_POLICY},
        "timings": {"total_s": round(time.perf_counter() - t_start, 3), "per_task": state["timings"]},
        "environment": environment(device),
        "analysis": analysis,
        "method_info": getattr(learner, "info", lambda: {})(),
        "protocols": protocol_results,
        "compute": summarize_compute(state["compute"]),
        "splits": {"accuracy": eval_split, "protocols": "test", "validation": splits.info.get("validation")},
    }
    validate_record(record)
    write_json(out_dir / "metrics.json", record)
    s = record["summary"]
    runlog.message(f"finished: average accuracy {s['avg_acc_sample']:.4f}, last accuracy {s['last_acc_sample']:.4f}, "
                   f"forgetting {s['forgetting']:.4f} -> {out_dir / 'metrics.json'}")
    if not keep_checkpoint:
        ckpt_path.unlink(missing_ok=True)
    return record
