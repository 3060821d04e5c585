# Grid expansion and validation. Everything here runs when the workflow is parsed, so a bad config
# fails before any job starts.
import sys
from pathlib import Path

import yaml
from snakemake.utils import validate

validate(config, "../schemas/config.schema.yaml")

REPO = Path(workflow.basedir)
RUNS = config["runs_dir"]
RESULTS = config["results_dir"]
PYTHON = sys.executable


def _experiment_path(path):
    p = Path(path)
    return p if p.is_absolute() else REPO / p


def _expand_grid():
    """(dataset, protocol, method, budget, seed) -> {experiment, sets}. Budget is 'none' for
    methods that keep no memory or are bounds (finetune, joint): they run once per seed."""
    from braincl import config as bconfig
    from braincl.registry import DATASETS, METHODS

    jobs = {}
    for entry in config["grid"]:
        unknown = [m for m in entry["methods"] if m not in METHODS]
        if unknown:
            raise ValueError(f"config grid: unknown method(s) {', '.join(unknown)}; valid: {', '.join(METHODS.names())}")
        if entry["dataset"] not in DATASETS:
            raise ValueError(f"config grid: unknown data set {entry['dataset']!r}; valid: {', '.join(DATASETS.names())}")
        label = entry.get("label") or entry["dataset"]
        experiment = _experiment_path(entry["experiment"])
        base = bconfig.load_yaml(experiment)
        for method in entry["methods"]:
            budgets = entry["budgets"] if METHODS.get(method).needs_budget else ["none"]
            for budget in budgets:
                for seed in entry["seeds"]:
                    sets = [f"{k}={v}" for k, v in (entry.get("set") or {}).items()]
                    sets += [f"dataset.name={entry['dataset']}", f"dataset.label={label}", f"protocol={entry['protocol']}",
                             f"method.name={method}", f"seed={seed}"]
                    if budget != "none":
                        sets.append(f"memory.budget={budget}")
                    # Resolve and validate now: a typo fails here, not in job 37 of 300.
                    try:
                        bconfig.validate(bconfig.resolve(base, sets))
                    except bconfig.ConfigError as err:
                        raise ValueError(f"config grid entry {label}/{method}/{budget}/seed{seed}: {err}") from None
                    key = (label, entry["protocol"], method, str(budget), str(seed))
                    if key in jobs:
                        raise ValueError(f"config grid: {'/'.join(key)} appears twice; give grid entries distinct labels")
                    jobs[key] = {"experiment": str(experiment), "sets": sets, "dataset": entry["dataset"]}
    return jobs


JOBS = _expand_grid()
RUN_FILES = [f"{RUNS}/{d}/{p}/{m}/{b}/seed{s}/metrics.json" for (d, p, m, b, s) in JOBS]


def job_for(wc):
    key = (wc.dataset, wc.protocol, wc.method, wc.budget, wc.seed)
    if key not in JOBS:
        raise ValueError(f"{key} is not in the configured grid")
    return JOBS[key]


def _runtimes():
    path = config.get("runtimes_file")
    if not path:
        return {}
    full = _experiment_path(path)
    if not full.is_file():
        raise ValueError(f"runtimes_file {path} not found: make it with `python benchmarks/cost_model.py` or set runtimes_file: null")
    with open(full) as fh:
        return yaml.safe_load(fh) or {}


RUNTIMES = _runtimes()


def train_runtime(wc):
    """Minutes for SLURM: from the cost model's table (keyed by label or data set, then method) when
    given, else the configured default."""
    fallback = RUNTIMES.get("default", config["resources"]["train"]["runtime"])
    loader = job_for(wc)["dataset"]
    return int(RUNTIMES.get(f"{wc.dataset}/{wc.method}", RUNTIMES.get(f"{loader}/{wc.method}", fallback)))


wildcard_constraints:
    dataset="[A-Za-z0-9_.-]+",
    protocol="[A-Za-z0-9_.-]+",
    method="[A-Za-z0-9_]+",
    budget="[A-Za-z0-9_.]+",
    seed="[0-9]+",
