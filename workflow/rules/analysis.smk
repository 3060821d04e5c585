# Tables, figures, the claims table and the report.
#
# - `analysis` (part of `all`) depends on every run of the grid, plus the runs of the named targets
#   that already exist, and writes the core outputs: headline tables and figures, results/claims.md
#   and results/report.html (a light page that links the figures; no timestamps).
# - `robustness`, `ablations`, `controls` and `budget_curve` each train their group of runs (under
#   `targets:` in the config); `{group}_tables` writes that group's tables and figures
#   (analysis/outputs.py).
# - `claims` runs every group, then rebuilds everything, so that results/claims.md sees every run.
# - `figures` declares no outputs and no inputs, so Snakemake always runs it when asked and never
#   schedules a training job for it: it rebuilds everything from the metrics.json files present,
#   even after the training code or the grid changed.
BENCH = config.get("benchmarks_dir", "results/benchmarks")
# The analysis reads every record under runs_dir (not only a rule's inputs) and writes under
# results_dir, so, like the training jobs, it needs a file system that all jobs share.
ANALYSIS_ARGS = f"--runs {RUNS} --benchmarks {BENCH} --out {RESULTS}"
ANALYSIS_RESOURCES = config["resources"].get("analysis", {})
ANALYSIS_FILES = group_files("core")
TARGET_GROUPS = [g for g in _outputs.GROUPS if g != "core"]


rule analysis:
    input:
        RUN_FILES,
        existing_target_runs,
    output:
        for_report(ANALYSIS_FILES, "core"),
    log:
        f"{RESULTS}/logs/analysis.log",
    params:
        python=PYTHON,
        args=ANALYSIS_ARGS,
    resources:
        mem_mb=ANALYSIS_RESOURCES.get("mem_mb", 2000),
        runtime=ANALYSIS_RESOURCES.get("runtime", 10),
    conda:
        "../envs/braincl.yaml"
    container:
        CONTAINER
    shell:
        "{params.python} -m analysis {params.args} --only core > {log} 2>&1"


# One target per named group of runs (`targets:` in the config): `snakemake --cores 2 NAME` trains the
# group's runs that are missing, then writes its tables and figures (rule NAME_tables). The target
# names the runs itself: a table rule whose outputs are committed would otherwise count as up to
# date while none of its runs exist yet, and train nothing.
#
# robustness: unknown classes (2 held out), long tail (rho 10, 100) and covariate shift (corruptions
# of the final model's test images) are runs of their own, under their own protocol labels.
for _group in TARGET_GROUPS:

    rule:
        name:
            f"{_group}_tables"
        input:
            lambda wc, g=_group: target_runs(g),
        output:
            for_report(group_files(_group), _group),
        log:
            f"{RESULTS}/logs/{_group}.log",
        params:
            python=PYTHON,
            args=ANALYSIS_ARGS,
            group=_group,
        conda:
            "../envs/braincl.yaml"
        container:
            CONTAINER
        shell:
            "{params.python} -m analysis {params.args} --only {params.group} > {log} 2>&1"

    rule:
        name:
            _group
        localrule: True
        input:
            lambda wc, g=_group: target_runs(g),
            group_files(_group),


# Everything: the grid, every named group's runs, then every output rebuilt from all the records.
# The claims also read the grid at five seeds (headline) and EWC's spectra (full).
rule claims:
    localrule: True
    input:
        RUN_FILES,
        [f for g in TARGET_GROUPS for f in group_files(g)],
        lambda wc: [f for g in TARGET_GROUPS for f in target_runs(g)],
        lambda wc: target_runs("headline") + target_runs("full"),
    log:
        f"{RESULTS}/logs/claims.log",
    params:
        python=PYTHON,
        args=ANALYSIS_ARGS,
    conda:
        "../envs/braincl.yaml"
    container:
        CONTAINER
    shell:
        "{params.python} -m analysis {params.args} > {log} 2>&1"


rule figures:
    localrule: True
    log:
        f"{RESULTS}/logs/figures.log",
    params:
        python=PYTHON,
        args=ANALYSIS_ARGS,
    conda:
        "../envs/braincl.yaml"
    container:
        CONTAINER
    shell:
        "{params.python} -m analysis {params.args} > {log} 2>&1"
