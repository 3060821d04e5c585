# Tables, figures and the report.
#
# Two ways in:
# - `analysis` (part of `all`) depends on every run of the grid and declares the tables and
#   figures, flagged for `snakemake --report`;
# - `figures` declares no outputs and no inputs, so Snakemake always runs it when asked and never
#   schedules a training job for it: it rebuilds everything from the metrics.json files present,
#   even after the training code or the grid changed.
from analysis import outputs as _outputs

BENCH = config.get("benchmarks_dir", "results/benchmarks")
ANALYSIS_CMD = f"{PYTHON} -m analysis --runs {RUNS} --benchmarks {BENCH} --out {RESULTS}"
TABLE_FILES = [str(p) for p in _outputs.table_paths(RESULTS)]
FIGURE_FILES = {f: [str(p) for p in _outputs.figure_paths(RESULTS) if p.stem == f] for f in _outputs.FIGURES}
ANALYSIS_FILES = TABLE_FILES + [p for paths in FIGURE_FILES.values() for p in paths]


def _reported(figure, path):
    caption = _outputs.caption_path(figure)
    if path.endswith(".png"):
        return report(path, caption=str(caption), category="Figures", subcategory=figure.replace("_", " "))
    return path


rule analysis:
    input:
        RUN_FILES,
    output:
        [report(t, category="Tables") if t.endswith(".md") else t for t in TABLE_FILES],
        [_reported(f, p) for f, paths in FIGURE_FILES.items() for p in paths],
    log:
        f"{RESULTS}/logs/analysis.log",
    resources:
        mem_mb=config["resources"].get("analysis", {}).get("mem_mb", 2000),
        runtime=config["resources"].get("analysis", {}).get("runtime", 10),
    shell:
        "{ANALYSIS_CMD} > {log} 2>&1"


rule figures:
    localrule: True
    shell:
        "{ANALYSIS_CMD}"


# `all` ends with the HTML report. It runs after a successful, real (non-dry) `all` only.
onsuccess:
    import subprocess

    targets = set(workflow.dag_settings.targets or {"all"})
    if not workflow.dryrun and "all" in targets and Path(RESULTS, "tables", "main.md").exists():
        configfiles = [str(c) for c in workflow.overwrite_configfiles]
        subprocess.run([PYTHON, "-m", "snakemake", "--snakefile", str(workflow.main_snakefile), "--report",
                        f"{RESULTS}/report.html", "--nolock", "--quiet", "all",
                        *(["--configfiles", *configfiles] if configfiles else [])], check=False)
