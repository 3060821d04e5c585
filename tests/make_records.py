"""Synthetic run records with known numbers, valid against the run-record schema, for testing the
analysis package without training. The headline summary is computed from the given accuracy matrix
with the same pure functions the runner uses, so a test can check the tables against hand-computed
values."""

from __future__ import annotations

import json
from pathlib import Path

from braincl.metrics import summarize
from braincl.record import SCHEMA_VERSION, validate_record


def breakdown(charged: int, budget: int | None, teacher: int = 0) -> dict:
    bytes_ = {"exemplars": charged}
    if teacher:
        bytes_["teacher"] = teacher
    return {"bytes": bytes_, "charged_bytes": charged, "total_bytes": charged + teacher,
            "uncharged_kinds": ["teacher"], "budget_bytes": budget}


def make_record(method: str, dataset: str, seed: int, R, *, budget_bytes: int | None = 1000,
                counts=None, protocol: str = "cil", per_class=None, spectrum=None, attention=None,
                protocols=None, charged: int | None = None, schema_version: int = SCHEMA_VERSION,
                variant: str | None = None, compute: dict | None = None, method_info: dict | None = None,
                config_protocols: dict | None = None, epochs: int | None = None) -> dict:
    """A valid record. ``R`` is the T x T accuracy matrix (entries above the diagonal ignored).
    ``variant`` names an ablation or control (``config.variant``), ``compute`` is a v3 compute
    section (see ``compute_section``), ``config_protocols`` the resolved config's ``protocols``, ``epochs`` its ``train.epochs``."""
    T = len(R)
    counts = list(counts or [10] * T)
    tag = [[float(R[t][j]) if j <= t else None for j in range(T)] for t in range(T)]
    nan = float("nan")
    R_nan = [[nan if v is None else v for v in row] for row in tag]
    charged = budget_bytes if charged is None and budget_bytes is not None else (charged or 0)
    mem = [breakdown(charged, budget_bytes) for _ in range(T)]
    accuracy = {"tag": tag, "taw": tag, "test_samples_per_task": counts}
    if per_class is not None:
        accuracy["per_class"] = per_class
    analysis = {}
    if spectrum is not None:
        analysis["feature_spectrum"] = spectrum
    if attention is not None:
        analysis["attention"] = {"after_task": attention}
    record = {
        "schema_version": schema_version,
        "run": {"method": method, "dataset": dataset, "protocol": protocol, "seed": seed,
                "budget_bytes": budget_bytes, "num_tasks": T, "started": "2025-01-01T00:00:00+00:00",
                "finished": "2025-01-01T00:01:00+00:00", "resumed_from_task": None},
        "config": {"method": {"name": method}, "variant": variant, "protocols": config_protocols or {},
                   **({"train": {"epochs": epochs}} if epochs is not None else {})},
        "scenario": {"class_order": list(range(2 * T)), "tasks": [[2 * t, 2 * t + 1] for t in range(T)],
                     "class_order_seed": 1993},
        "accuracy": accuracy,
        "summary": summarize(R_nan, counts),
        "memory": {"budget_bytes": budget_bytes, "per_task": mem, "final": mem[-1]},
        "timings": {"total_s": 1.0, "per_task": [{"task": t} for t in range(T)]},
        "environment": {"device": "cpu", "python": "3.11", "torch": "synthetic"},
        "analysis": analysis,
        "method_info": method_info or {},
        "protocols": protocols or {},
    }
    if compute is not None:
        record["compute"] = compute
    validate_record(record, f"synthetic record {method}/{dataset}/seed{seed}")
    return record


def compute_section(T: int, flops_per_task: int, backbone_per_task: int, encoding_flops_per_task: int = 0) -> dict:
    """A v3 ``compute`` section with the same numbers in every task: one ``train`` phase (and a
    ``codec`` phase when ``encoding_flops_per_task`` is set)."""
    def phase(flops, backbone):
        return {"steps": 10, "samples": backbone, "backbone_forward": backbone, "backbone_backward": backbone,
                "flops": flops, "wall_s": 1.0}
    phases = {"train": phase(flops_per_task, backbone_per_task)}
    if encoding_flops_per_task:
        phases["codec"] = phase(encoding_flops_per_task, 0)
    per_task = [{"task": t, "phases": phases} for t in range(T)]
    total = lambda ph: {k: (v * T if k != "wall_s" else float(v * T)) for k, v in ph.items()}  # noqa: E731
    encoding = total(phases["codec"]) if "codec" in phases else total(phase(0, 0))
    return {"per_task": per_task, "per_phase": {k: total(v) for k, v in phases.items()},
            "training": total(phases["train"]), "encoding": encoding, "note": "synthetic"}


def write_record(root: str | Path, record: dict) -> Path:
    """Write at the results layout results/runs/{dataset}/{protocol}/{method}[+variant]/{budget}/seed{seed}/."""
    run = record["run"]
    budget = "none" if run["budget_bytes"] is None else f"{run['budget_bytes']}B"
    variant = (record.get("config") or {}).get("variant")
    folder = f"{run['method']}+{variant}" if variant else run["method"]
    path = Path(root) / run["dataset"] / run["protocol"] / folder / budget / f"seed{run['seed']}" / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def attention_entries(T: int, n: int = 2, size: int = 7, value: float = 0.5) -> list[dict]:
    """Uniform maps for ``n`` images after each of ``T`` tasks."""
    grid = [[value] * size for _ in range(size)]
    return [{"task": t, "test_indices": list(range(n)), "image_ids": list(range(n)), "labels": [0] * n,
             "predicted": [0] * n, "maps": [grid] * n} for t in range(T)]
