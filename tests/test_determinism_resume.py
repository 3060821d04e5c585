"""Same config and seed -> same metrics; a killed run resumes to the same metrics."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import tiny_overrides


def test_same_seed_same_matrices(run_tiny, tmp_path):
    a = run_tiny("er", out=tmp_path / "a")
    b = run_tiny("er", out=tmp_path / "b")
    assert a["accuracy"]["tag"] == b["accuracy"]["tag"]
    assert a["accuracy"]["taw"] == b["accuracy"]["taw"]
    assert a["memory"]["final"] == b["memory"]["final"]
    c = run_tiny("er", out=tmp_path / "c", seed=1)
    assert c["accuracy"]["tag"] != a["accuracy"]["tag"]


def _cmd(out: Path) -> list[str]:
    sets = tiny_overrides("er", "60KB", **{"scenario.num_tasks": 4, "train.epochs": 2})
    return [sys.executable, "-m", "braincl.cli", "run", "none", "--out", str(out),
            *sum((["--set", s] for s in sets), [])]


@pytest.mark.slow
def test_resume_after_kill_gives_same_metrics(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("{}\n")
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def cmd(out):
        c = _cmd(out)
        c[4] = str(cfg)
        return c

    subprocess.run(cmd(ref), check=True, env=env, capture_output=True)
    proc = subprocess.Popen(cmd(killed), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (killed / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "metrics.json").exists()
    out = subprocess.run(cmd(killed), check=True, env=env, capture_output=True, text=True)
    assert "resuming at task" in out.stdout
    a = json.loads((ref / "metrics.json").read_text())
    b = json.loads((killed / "metrics.json").read_text())
    assert b["run"]["resumed_from_task"] >= 1
    assert a["accuracy"] == b["accuracy"] and a["summary"] == b["summary"] and a["memory"] == b["memory"]
    assert not (killed / "checkpoint.pt").exists()
