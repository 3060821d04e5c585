# The published reference: Seq-MNIST of Buzzega et al. (NeurIPS 2020), Table 2, class-IL.
#
#   snakemake --cores 1 reference      every run of config `targets.reference`, then the table
#
# The runs live under {runs_dir}/seq-mnist/der2020/, apart from the default grid's.
REFERENCE_TABLES = [f"{RESULTS}/tables/reference_seq_mnist.{ext}" for ext in ("md", "csv", "tex")]


rule reference:
    localrule: True
    input:
        lambda wc: target_runs("reference"),
        REFERENCE_TABLES,


rule reference_table:
    input:
        lambda wc: target_runs("reference"),
    output:
        REFERENCE_TABLES,
    log:
        f"{RESULTS}/logs/reference.log",
    params:
        runs=f"{RUNS}/seq-mnist/der2020",
        out=f"{RESULTS}/tables",
    shell:
        "{PYTHON} -m analysis.reference --runs {params.runs} --out {params.out} > {log} 2>&1"
