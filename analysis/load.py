"""Read every ``metrics.json`` under a results folder into tidy pandas frames.

A run's identity (data set, protocol, method, variant, budget, seed) comes from the record's own
``run`` and ``config`` blocks, never from its path. ``variant`` names an ablation or control run
(``config.variant``; "" for a plain run). Each file is validated against the run-record schema (v1,
v2, v3 and v4 are accepted: each only added optional fields; v3 added ``compute``, v4 its FLOPs by purpose). A bad file is reported by name and skipped, so one
broken run never hides the others; ``strict=True`` raises after listing all of them.

Frames (``KEYS`` = dataset, protocol, method, variant, budget_bytes, seed; accuracies are fractions):
- ``runs``: one row per run: headline summary in both weightings, forgetting, BWT, memory, training
  compute (NaN for records without ``compute``), the long-tail ratio ``rho``, BrainCL's cue and
  long-term-memory statistics, ``epochs`` (the resolved ``train.epochs``; NaN where the record's
  config has none), and ``main`` (True for the plain class-incremental runs the headline
  tables use);
- ``curves``: accuracy A_t after each task t (1-based ``step``), both weightings;
- ``per_class``: accuracy of each seen class after each task;
- ``spectra``: normalised eigenvalues of the feature covariance after the last task;
- ``covariate_shift``: accuracy per corruption and severity;
- ``unknown``: AUROC per open-set score (msp, energy);
- ``attention``: one Grad-CAM map (numpy array) per image and task;
- ``alternatives``: summaries of a method's other predictors (e.g. iCaRL's CNN head)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from braincl.record import RecordError, validate_record

KEYS = ["dataset", "protocol", "method", "variant", "budget_bytes", "seed"]
SUMMARY = ["avg_acc_sample", "avg_acc_task", "last_acc_sample", "last_acc_task", "forgetting", "bwt"]
LONG_TAIL_PROTOCOLS = ("longtail", "long_tail")
COMPUTE_FIELDS = ("steps", "samples", "backbone_forward", "backbone_backward", "flops", "wall_s")
# The headline tables and figures use plain class-incremental runs: protocol label "cil", no variant
# (ablations and controls have their own tables) and no protocol that changes what is trained
# (long-tailed subsets, held-out unknown classes).
MAIN_PROTOCOL = "cil"


class RecordLoadError(RuntimeError):
    """Raised in strict mode; the message lists every bad file."""


@dataclass
class BadFile:
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class Results:
    runs: pd.DataFrame
    curves: pd.DataFrame
    per_class: pd.DataFrame
    spectra: pd.DataFrame
    covariate_shift: pd.DataFrame
    unknown: pd.DataFrame
    attention: pd.DataFrame
    alternatives: pd.DataFrame
    errors: list[BadFile] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def _num(x):
    """A finite float or None (protocol blocks are read defensively)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def covariate_rows(block: dict) -> list[dict]:
    """Rows (corruption, severity, accuracy) of a ``protocols.covariate_shift`` block, as
    braincl/protocols/covariate_shift.py writes it: ``accuracy: {corruption: [acc per severity]}``
    aligned with ``severities``, and ``clean`` (kept as severity 0). Also accepted:
    ``accuracy: {corruption: {severity: acc}}`` and ``results: [{corruption, severity, accuracy}]``.
    Entries that are not numbers are skipped."""
    rows = []
    severities = block.get("severities") or []
    acc = block.get("accuracy")
    if isinstance(acc, dict):
        for corruption, by_sev in acc.items():
            if isinstance(by_sev, list):
                by_sev = dict(zip(severities, by_sev))
            if isinstance(by_sev, dict):
                for sev, v in by_sev.items():
                    v = _num(v.get("accuracy") if isinstance(v, dict) else v)
                    if v is not None and _num(sev) is not None:
                        rows.append({"corruption": str(corruption), "severity": int(float(sev)), "accuracy": v})
    for item in block.get("results") or []:
        if isinstance(item, dict) and _num(item.get("accuracy")) is not None and _num(item.get("severity")) is not None:
            rows.append({"corruption": str(item.get("corruption", "?")), "severity": int(float(item["severity"])),
                         "accuracy": _num(item["accuracy"])})
    clean = block.get("clean")
    clean = _num(clean.get("accuracy") if isinstance(clean, dict) else clean)
    if clean is not None:
        rows.append({"corruption": "clean", "severity": 0, "accuracy": clean})
    return rows


def unknown_rows(block: dict) -> list[dict]:
    """AUROC per score of a ``protocols.unknown_classes`` block: flat ``auroc_<score>`` keys, as
    braincl/protocols/unknown_classes.py writes them, or ``auroc: {score: value}``."""
    found = {}
    if isinstance(block.get("auroc"), dict):
        found.update(block["auroc"])
    for key, v in block.items():
        if key.startswith("auroc_"):
            found.setdefault(key[len("auroc_"):], v)
    return [{"score": str(k), "auroc": _num(v)} for k, v in found.items() if _num(v) is not None]


def compute_columns(record: dict) -> dict:
    """Training and encoding compute of a v3 record (``compute.training`` / ``compute.encoding``);
    NaN where the record has none, so tables can say n/a."""
    comp = record.get("compute") or {}
    out = {}
    for part in ("training", "encoding"):
        block = comp.get(part) if isinstance(comp.get(part), dict) else {}
        for field in COMPUTE_FIELDS:
            v = _num(block.get(field))
            out[f"{part}_{field}"] = np.nan if v is None else v
    return out


def braincl_columns(record: dict) -> dict:
    """Cue size, codec distortion and long-term memory per class from ``method_info.per_task``
    (BrainCL and its variants; NaN for methods that do not record them). ``ltm_per_class`` is the
    per-class quota after the last task; JPEG replay's ``exemplars_per_class`` is averaged instead."""
    info = record.get("method_info") or {}
    per_task = [t for t in info.get("per_task") or [] if isinstance(t, dict)]
    def mean_of(values):
        values = [v for v in map(_num, values) if v is not None]
        return float(np.mean(values)) if values else np.nan
    ltm = [t.get("ltm_cues_per_class") for t in per_task if "ltm_cues_per_class" in t]
    if ltm:
        ltm_per_class = _num(ltm[-1])
    elif isinstance(info.get("exemplars_per_class"), dict) and info["exemplars_per_class"]:
        ltm_per_class = mean_of(info["exemplars_per_class"].values())
    else:
        ltm_per_class = None
    return {"cue_bytes": mean_of(t.get("mean_cue_bytes") for t in per_task),
            "codec_mse": mean_of((t.get("codec") or {}).get("mse") for t in per_task),
            "ltm_per_class": np.nan if ltm_per_class is None else ltm_per_class}


def long_tail_rho(record: dict):
    """The imbalance ratio of a long-tailed run, from its resolved config (NaN for other runs)."""
    params = ((record.get("config") or {}).get("protocols") or {}).get("long_tail")
    if isinstance(params, dict) and params.get("enabled", True):
        v = _num(params.get("rho", 10.0))  # braincl/protocols/long_tail.py's default
        return np.nan if v is None else v
    block = (record.get("protocols") or {}).get("long_tail") or {}
    v = _num(block.get("rho", block.get("imbalance_ratio"))) if isinstance(block, dict) else None
    return np.nan if v is None else v


def train_epochs(record: dict):
    """``train.epochs`` of the resolved config: the training length every method follows."""
    train = (record.get("config") or {}).get("train")
    v = _num(train.get("epochs")) if isinstance(train, dict) else None
    return np.nan if v is None else v


def _read(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise RecordError(f"not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); "
                          "a run that was killed while writing leaves no metrics.json, so rerun it") from None
    if not isinstance(record, dict):
        raise RecordError("top level is not a JSON object")
    validate_record(record, str(path))
    return record


def _rows(record: dict) -> dict[str, list[dict]]:
    run, acc, summary = record["run"], record["accuracy"], record["summary"]
    variant = (record.get("config") or {}).get("variant") or run.get("variant") or ""
    key = {"dataset": run["dataset"], "protocol": run["protocol"], "method": run["method"], "variant": str(variant),
           "budget_bytes": run["budget_bytes"], "seed": run["seed"]}
    final = record["memory"]["final"]
    out = {name: [] for name in ("curves", "per_class", "spectra", "covariate_shift", "unknown", "attention",
                                 "alternatives")}
    protocols = record.get("protocols") or {}
    out["runs"] = [{**key, "num_tasks": run["num_tasks"], "schema_version": record["schema_version"],
                    **{m: summary[m] for m in SUMMARY},
                    "charged_bytes": final["charged_bytes"], "total_bytes": final["total_bytes"],
                    "teacher_bytes": final["bytes"].get("teacher", 0), "train_s": record["timings"]["total_s"],
                    "long_tail": run["protocol"] in LONG_TAIL_PROTOCOLS or "long_tail" in protocols,
                    "held_out_classes": "unknown_classes" in protocols, "rho": long_tail_rho(record),
                    "epochs": train_epochs(record),
                    **compute_columns(record), **braincl_columns(record)}]
    steps_s, steps_t = summary.get("acc_per_step_sample"), summary.get("acc_per_step_task")
    if steps_s is None or steps_t is None:  # older records: recompute from the matrix
        from braincl.metrics import accuracy_per_step

        R = [[np.nan if v is None else v for v in row] for row in acc["tag"]]
        steps_s = accuracy_per_step(R, acc["test_samples_per_task"], "sample").tolist()
        steps_t = accuracy_per_step(R, None, "task").tolist()
    out["curves"] = [{**key, "step": t + 1, "acc_sample": s, "acc_task": w}
                     for t, (s, w) in enumerate(zip(steps_s, steps_t))]
    out["per_class"] = [{**key, "after_task": t + 1, "class": c, "accuracy": a}
                        for t, row in enumerate(acc.get("per_class") or []) for c, a in enumerate(row)]
    analysis = record.get("analysis") or {}
    out["spectra"] = [{**key, "index": i + 1, "eigenvalue": v} for i, v in enumerate(analysis.get("feature_spectrum") or [])]
    for entry in (analysis.get("attention") or {}).get("after_task", []):
        for i, m in enumerate(entry["maps"]):
            out["attention"].append({**key, "after_task": entry["task"] + 1, "image": i,
                                     "test_index": entry["test_indices"][i] if i < len(entry["test_indices"]) else i,
                                     "map": np.asarray(m, dtype=float)})
    if isinstance(protocols.get("covariate_shift"), dict):
        out["covariate_shift"] = [{**key, **r} for r in covariate_rows(protocols["covariate_shift"])]
    if isinstance(protocols.get("unknown_classes"), dict):
        out["unknown"] = [{**key, **r} for r in unknown_rows(protocols["unknown_classes"])]
    for name, alt in (acc.get("alternatives") or {}).items():
        out["alternatives"].append({**key, "predictor": name, **{m: alt["summary"][m] for m in SUMMARY}})
    return out


_COLUMNS = {
    "runs": KEYS + ["num_tasks", "schema_version", *SUMMARY, "charged_bytes", "total_bytes", "teacher_bytes",
                    "train_s", "long_tail", "held_out_classes", "rho", "epochs",
                    *[f"{p}_{f}" for p in ("training", "encoding") for f in COMPUTE_FIELDS],
                    "cue_bytes", "codec_mse", "ltm_per_class", "main", "path"],
    "curves": KEYS + ["step", "acc_sample", "acc_task"],
    "per_class": KEYS + ["after_task", "class", "accuracy"],
    "spectra": KEYS + ["index", "eigenvalue"],
    "covariate_shift": KEYS + ["corruption", "severity", "accuracy"],
    "unknown": KEYS + ["score", "auroc"],
    "attention": KEYS + ["after_task", "image", "test_index", "map"],
    "alternatives": KEYS + ["predictor", *SUMMARY],
}


def load_results(root: str | Path, strict: bool = False) -> Results:
    """Load every ``metrics.json`` below ``root``. Bad files land in ``Results.errors``."""
    root = Path(root)
    files = sorted(root.rglob("metrics.json")) if root.exists() else []
    collected = {name: [] for name in _COLUMNS}
    errors: list[BadFile] = []
    seen: dict[tuple, Path] = {}
    for path in files:
        try:
            rows = _rows(_read(path))
        except (RecordError, OSError, KeyError, TypeError, ValueError) as err:
            errors.append(BadFile(path, str(err).replace(f"{path} ", "", 1)))
            continue
        ident = tuple(rows["runs"][0][k] for k in KEYS)
        if ident in seen:
            errors.append(BadFile(path, f"same run ({', '.join(map(str, ident))}) as {seen[ident]}; keep one of them"))
            continue
        seen[ident] = path
        rows["runs"][0]["path"] = str(path)
        for name, items in rows.items():
            collected[name].extend(items)
    if strict and errors:
        raise RecordLoadError(f"{len(errors)} bad run record(s) under {root}:\n" + "\n".join(f"- {e}" for e in errors))
    for row in collected["runs"]:
        row["main"] = (row["protocol"] == MAIN_PROTOCOL and not row["variant"] and not row["long_tail"]
                       and not row["held_out_classes"])
    frames = {}
    for name, cols in _COLUMNS.items():
        df = pd.DataFrame(collected[name], columns=cols)
        df["budget_bytes"] = df["budget_bytes"].astype("Int64")
        frames[name] = df
    return Results(**frames, errors=errors, files=files)


def main_keys(res: Results) -> pd.DataFrame:
    """Identities of the plain class-incremental runs, to filter the long frames with a merge."""
    return res.runs.loc[res.runs["main"], KEYS]
