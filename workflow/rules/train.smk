# One training job per (data set, protocol, method, budget, seed).
#
# The job's checkpoint (checkpoint.pt beside metrics.json) is deliberately NOT a declared output:
# Snakemake deletes the outputs of a failed job, and the checkpoint is what lets the rerun resume
# at the first unfinished task. braincl deletes it itself once metrics.json is written, and
# metrics.json is written atomically, so a failed job never leaves a partial result.

TRAIN = config["resources"]["train"]


rule train:
    output:
        f"{RUNS}/{{dataset}}/{{protocol}}/{{method}}/{{budget}}/seed{{seed}}/metrics.json",
    log:
        f"{RUNS}/{{dataset}}/{{protocol}}/{{method}}/{{budget}}/seed{{seed}}/train.log",
    params:
        experiment=lambda wc: job_for(wc)["experiment"],
        sets=lambda wc: " ".join(f"--set '{s}'" for s in job_for(wc)["sets"]),
        outdir=lambda wc, output: str(Path(output[0]).parent),
        python=PYTHON,
    # Snakemake caps threads at --cores (the submit host's CPUs when unset); the job's own allocation
    # is cpus_per_task, so the run takes its thread count from there.
    threads: train_resource("cpus_per_task")
    resources:
        mem_mb=train_resource("mem_mb"),
        runtime=train_runtime,
        cpus_per_task=train_resource("cpus_per_task"),
        **{k: TRAIN[k] for k in ("gpu", "gpu_model", "gres") if TRAIN.get(k)},
    conda:
        "../envs/braincl.yaml"
    container:
        CONTAINER
    shell:
        "echo slurm_job=${{SLURM_JOB_ID:-none}} host=$(hostname) > {log}; "
        "{params.python} -m braincl.cli run {params.experiment} {params.sets} --set train.threads={resources.cpus_per_task} "
        "--out {params.outdir} --quiet >> {log} 2>&1"
