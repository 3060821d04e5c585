# braincl-bench workflow: data sets x methods x budgets x seeds -> metrics.json -> tables, figures, report.
#
#   snakemake --cores 8 all                       every run, the tables, the figures, the HTML report
#   snakemake --cores 8 headline                  the default grid at five seeds (the committed tables), then the tables
#   snakemake --cores 8 full                      the other baselines at the same settings, then the tables
#   snakemake --cores 1 figures                   tables and figures from the metrics.json files present; never trains
#   snakemake all --profile profiles/slurm --configfile config/paper.yaml   the paper grid on a SLURM cluster
#
#   snakemake --report report.html                the tables and figures of `all`, with their captions, in one file
#
# The config is validated against workflow/schemas/config.schema.yaml, and every run's resolved
# braincl config is validated before any job starts. Every rule that runs a command has a log, a
# conda environment (workflow/envs/) and a container (Containerfile): docs/workflow.md.

configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/reference.smk"


rule all:
    default_target: True
    input:
        RUN_FILES,
        ANALYSIS_FILES,


# headline: the default grid at five seeds (config `targets.headline`), which the committed tables use;
# full: the methods outside the default grid (`targets.full`). Each trains its runs, then rebuilds
# every table and figure from all records present.
for _target in ("headline", "full"):

    rule:
        name:
            _target
        localrule: True
        input:
            RUN_FILES,
            lambda wc, t=_target: target_runs(t),
        log:
            f"{RESULTS}/logs/{_target}.log",
        params:
            python=PYTHON,
            args=ANALYSIS_ARGS,
        conda:
            "workflow/envs/braincl.yaml"
        container:
            CONTAINER
        shell:
            "{params.python} -m analysis {params.args} > {log} 2>&1"
