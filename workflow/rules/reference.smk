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
        for_report(REFERENCE_TABLES, "reference"),
    log:
        f"{RESULTS}/logs/reference.log",
    params:
        python=PYTHON,
        runs=f"{RUNS}/seq-mnist/der2020",
        out=lambda wc, output: str(Path(output[0]).parent),
    conda:
        "../envs/braincl.yaml"
    container:
        CONTAINER
    shell:
        "{params.python} -m analysis.reference --runs {params.runs} --out {params.out} > {log} 2>&1"
