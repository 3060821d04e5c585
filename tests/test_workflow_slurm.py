"""A real single-node SLURM cluster (Debian's slurm-wlm and munge) runs a micro grid through
profiles/slurm. The test starts the daemons itself and stops only those it started."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "slurm" / "slurm_local.sh"
MICRO = REPO / "tests" / "workflow" / "micro.yaml"


def _daemons_running(env) -> bool:
    out = subprocess.run(["bash", str(SCRIPT), "status"], env=env, capture_output=True, text=True)
    return "slurmctld: running" in out.stdout


@pytest.mark.slurm
@pytest.mark.slow
def test_micro_grid_through_real_slurm(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("SLURM test skipped: starting slurmctld/slurmd/munged needs root")
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        pytest.skip("SLURM test skipped: slurm-wlm is not installed and apt-get is not available to install it")
    state = Path(os.environ.get("BRAINCL_SLURM_DIR", "/tmp/braincl-slurm-test"))
    env = dict(os.environ, SLURM_LOCAL_DIR=str(state), SLURM_LOCAL_ACCOUNTING="none", SLURM_LOCAL_PARTITION="debug")
    started_here = not _daemons_running(env)
    up = subprocess.run(["bash", str(SCRIPT), "up"], env=env, capture_output=True, text=True, timeout=900)
    if up.returncode != 0:
        if shutil.which("slurmctld") is None:
            print(up.stdout[-2000:], up.stderr[-2000:])
            pytest.skip("SLURM test skipped: installing slurm-wlm/munge failed (see output above)")
        raise AssertionError(f"could not start SLURM:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}")
    try:
        cmd = ["timeout", "-s", "KILL", "900", sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "all",
               "--profile", str(REPO / "profiles" / "slurm"), "--configfile", str(MICRO),
               "--default-resources", "slurm_partition=debug", "mem_mb=1000", "runtime=10",
               # no slurmdbd here: poll squeue instead of sacct, and submit without an account
               "--slurm-status-command", "squeue", "--slurm-no-account",
               "--slurm-init-seconds-before-status-checks", "2", "--slurm-keep-successful-logs", "--jobs", "2", "--latency-wait", "10"]
        run = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
        assert run.returncode == 0, f"snakemake through SLURM failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
        runs = sorted(tmp_path.glob("results/runs/**/metrics.json"))
        assert len(runs) == 2
        for metrics in runs:
            log = (metrics.parent / "train.log").read_text()
            assert re.search(r"slurm_job=\d+", log), f"{metrics.parent} did not run under SLURM:\n{log[:500]}"
        assert (tmp_path / "results" / "tables" / "main.md").exists()
        assert list((tmp_path / ".snakemake" / "slurm_logs").rglob("*.log")), "no SLURM job logs"
    finally:
        if started_here:
            subprocess.run(["bash", str(SCRIPT), "down"], env=env, capture_output=True, text=True, timeout=120)
