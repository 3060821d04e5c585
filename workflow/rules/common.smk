# Grid expansion and validation. Everything here runs when the workflow is parsed, so a bad config
# fails before any job starts.
import sys
from pathlib import Path

from snakemake.utils import validate

from braincl import workflow_config as _wconfig
from braincl import yamlio

# The config files again, read as braincl reads YAML (1e-3 is a number, a key given twice is an
# error), budgets checked with the CLI's own parser before the schema's folder-name pattern, and
# the schema checked with the CLI's strict integers and messages.
_wconfig.reread(config, workflow)
_wconfig.check(config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml")
validate(config, "../schemas/config.schema.yaml")

REPO = Path(workflow.basedir)
RUNS = config["runs_dir"]
RESULTS = config["results_dir"]


def _experiment_path(path):
    p = Path(path)
    return p if p.is_absolute() else REPO / p


def _expand_grid(entries, group):
    """(dataset, protocol, method[+variant], budget, seed) -> {experiment, sets, group}. Budget is 'none'
    for methods that keep no memory or are bounds (finetune, joint): they run once per seed. A
    ``variant`` (an ablation or a control) appends ``+variant`` to the method's folder and sets the
    run config's ``variant`` key, which the analysis reads."""
    from braincl import config as bconfig
    from braincl.registry import DATASETS, METHODS

    jobs = {}
    for entry in entries:
        unknown = [m for m in entry["methods"] if m not in METHODS]
        if unknown:
            raise ValueError(f"config {group}: unknown method(s) {', '.join(unknown)}; valid: {', '.join(METHODS.names())}")
        if entry["dataset"] not in DATASETS:
            raise ValueError(f"config {group}: unknown data set {entry['dataset']!r}; valid: {', '.join(DATASETS.names())}")
        label = entry.get("label") or entry["dataset"]
        variant = entry.get("variant")
        experiment = _experiment_path(entry["experiment"])
        base = bconfig.load_yaml(experiment)
        for method in entry["methods"]:
            budgets = entry["budgets"] if METHODS.get(method).needs_budget else ["none"]
            folder = f"{method}+{variant}" if variant else method
            for budget in budgets:
                for seed in entry["seeds"]:
                    sets = [f"{k}={v}" for k, v in (entry.get("set") or {}).items()]
                    sets += [f"dataset.name={entry['dataset']}", f"dataset.label={label}", f"protocol={entry['protocol']}",
                             f"method.name={method}", f"seed={seed}"]
                    if variant:
                        sets.append(f"variant={variant}")
                    if budget != "none":
                        sets.append(f"memory.budget={budget}")
                    # Resolve and validate now: a typo fails here, not in job 37 of 300.
                    try:
                        bconfig.validate(bconfig.resolve(base, sets))
                    except bconfig.ConfigError as err:
                        raise ValueError(f"config {group} entry {label}/{folder}/{budget}/seed{seed}: {err}") from None
                    key = (label, entry["protocol"], folder, str(budget), str(seed))
                    if key in jobs:
                        raise ValueError(f"config {group}: {'/'.join(key)} appears twice; give entries distinct labels or variants")
                    jobs[key] = {"experiment": str(experiment), "sets": sets, "dataset": entry["dataset"], "group": group}
    return jobs


def _run_file(key):
    d, p, m, b, s = key
    return f"{RUNS}/{d}/{p}/{m}/{b}/seed{s}/metrics.json"


def _all_jobs():
    """The default grid (target `all`) and every named group under `targets:`. A run in two groups
    (the same path) is one job, so its settings must agree."""
    groups = {"grid": _expand_grid(config["grid"], "grid")}
    for name, entries in (config.get("targets") or {}).items():
        groups[name] = _expand_grid(entries, f"targets.{name}")
    jobs = {}
    for name, group in groups.items():
        for key, job in group.items():
            if key in jobs and (jobs[key]["sets"], jobs[key]["experiment"]) != (job["sets"], job["experiment"]):
                run_path, first = Path(*key).as_posix(), jobs[key]["group"]
                raise ValueError(
                    f"config {job['group']}: {run_path} is also in {first} with other settings; give "
                    f"one of the two entries its own label: (e.g. label: {key[0]}-mine) or variant:, so that their runs "
                    "go to different folders")
            jobs.setdefault(key, job)
    return jobs, {name: [_run_file(k) for k in group] for name, group in groups.items()}


JOBS, _GROUP_RUNS = _all_jobs()
RUN_FILES = _GROUP_RUNS.pop("grid")
# Named groups of runs beyond the default grid (e.g. `reference`, `ablations`): target_runs(name).
TARGET_RUNS = _GROUP_RUNS


def target_runs(name):
    if name not in TARGET_RUNS:
        raise ValueError(f"config has no targets.{name}; add it to the workflow config")
    return TARGET_RUNS[name]


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
    return yamlio.read_file(full, "runtimes_file") or {}


RUNTIMES = _runtimes()


def _resources_table():
    """``resources_file``: {dataset/method: {runtime, mem_mb, cpus_per_task}} from benchmarks/cost_model.py."""
    path = config.get("resources_file")
    if not path:
        return {}
    full = _experiment_path(path)
    if not full.is_file():
        raise ValueError(f"resources_file {path} not found: make it with `python benchmarks/cost_model.py --resources {path}` "
                         "or set resources_file: null")
    return yamlio.read_file(full, "resources_file") or {}


RESOURCES = _resources_table()


def _job_table_value(wc, table, name=None):
    loader, method = job_for(wc)["dataset"], wc.method.split("+")[0]
    for key in (f"{wc.dataset}/{method}", f"{loader}/{method}", "default"):
        if key in table:
            return table[key] if name is None else table[key].get(name)
    return None


def train_resource(name):
    """A training job's ``name`` (runtime, mem_mb, cpus_per_task) from ``resources_file`` (keyed by label or
    data set, then method), else the workflow config's resources.train (threads for cpus_per_task)."""
    default = config["resources"]["train"]["threads" if name == "cpus_per_task" else name]

    def lookup(wc):
        value = _job_table_value(wc, RESOURCES, name)
        if value is None and name == "runtime":
            value = _job_table_value(wc, RUNTIMES)
        return int(value if value is not None else default)

    return lookup


def train_runtime(wc):
    """Minutes for SLURM: from the cost model's tables when given, else the configured default."""
    return train_resource("runtime")(wc)


wildcard_constraints:
    dataset="[A-Za-z0-9_.-]+",
    protocol="[A-Za-z0-9_.-]+",
    method="[A-Za-z0-9_]+(\\+[A-Za-z0-9_.-]+)?",
    budget="[A-Za-z0-9_.]+",
    seed="[0-9]+",


# Software. Each job that runs a command names one environment twice, as a conda environment (the
# pinned set in workflow/envs/braincl.yaml, for --sdm conda) and as a container (an image of the same
# set built from ./Containerfile, for --sdm apptainer). See docs/workflow.md.
from snakemake_interface_executor_plugins.settings import DeploymentMethod

CONTAINER = config.get("container_image", "braincl-bench.sif")
_DEPLOYED = {DeploymentMethod.CONDA, DeploymentMethod.APPTAINER} & set(workflow.deployment_settings.deployment_method)
if DeploymentMethod.APPTAINER in _DEPLOYED and "://" not in CONTAINER and not Path(CONTAINER).is_file():
    raise ValueError(f"container image {CONTAINER} not found: build it from Containerfile (docs/workflow.md) "
                     "or set container_image to a docker:// or oras:// address")
# The conda environment holds the libraries, not the suite: its code is the checkout, found by
# `python -m` in the working directory.
if DeploymentMethod.CONDA in _DEPLOYED and Path.cwd().resolve() != REPO.resolve():
    raise ValueError(f"--sdm conda runs the suite's code from the working directory: run Snakemake from {REPO}")
# A job runs the `python` of its environment when Snakemake deploys one, else the interpreter that
# runs Snakemake (so a virtualenv need not be activated). A Path, not a str: Snakemake's params
# trigger records plain values only, and where the interpreter lives is no parameter of a result
# (deployed environments are tracked by the software-env trigger instead).
PYTHON = Path("python") if _DEPLOYED else Path(sys.executable)


# Analysis outputs: the names come from analysis/outputs.py, shared with `python -m analysis`.
from analysis import outputs as _outputs

TABLE_CAPTION = REPO / "workflow" / "report" / "table.rst"
CLAIMS_CAPTION = REPO / "workflow" / "report" / "claims.rst"


def group_files(group):
    """Every file `python -m analysis --only GROUP` writes."""
    return [str(p) for p in _outputs.all_paths(RESULTS, [group])]


def for_report(paths, subcategory):
    """The same paths as outputs of a job, with the ones `snakemake --report` shows flagged: each
    figure's PNG with its caption from analysis/captions/ (the PDF is the same figure), each table's
    md (its caption, then the numbers) and csv, and the claims table."""
    flagged = []
    for path in map(Path, paths):
        if path.parent.name == "figures" and path.suffix == ".png":
            flagged.append(report(str(path), caption=str(_outputs.caption_path(path.stem)), category="Figures",
                                  subcategory=subcategory, labels={"figure": path.stem}))
        elif path.parent.name == "tables" and path.suffix in (".md", ".csv"):
            flagged.append(report(str(path), caption=str(TABLE_CAPTION), category="Tables", subcategory=subcategory,
                                  labels={"table": path.stem, "format": path.suffix[1:]}))
        elif path.name == _outputs.CLAIMS:
            flagged.append(report(str(path), caption=str(CLAIMS_CAPTION), category="Claims"))
        else:
            flagged.append(str(path))
    return flagged


def existing_target_runs(wildcards):
    """Runs of the named targets that exist now: the claims and the report use them, but `all`
    never trains them."""
    return sorted({f for runs in TARGET_RUNS.values() for f in runs if Path(f).exists()} - set(RUN_FILES))
