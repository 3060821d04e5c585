"""BrainCL survives what a cluster does to a run: killed after a task and rerun (or requeued), it
resumes to the metrics of an uninterrupted run, and its cues decode in a fresh process exactly
as in the process that wrote them."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import tiny_overrides

SMALL = {"method.params.N": 8, "method.params.M": 8, "method.params.codec_steps": 6,
         "method.params.wake_epochs": 1, "method.params.sleep_epochs": 1}
SETS = tiny_overrides("braincl", "30KB", **SMALL, **{"scenario.num_tasks": 3})
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def _cmd(cfg: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "braincl.cli", "run", str(cfg), "--out", str(out),
            *sum((["--set", s] for s in SETS), []), *extra]


@pytest.mark.slow
def test_braincl_resume_after_kill_gives_same_metrics(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("{}\n")
    from braincl import config
    from braincl.runner import run_experiment

    ref, killed = tmp_path / "ref", tmp_path / "killed"
    run_experiment(config.load(cfg, SETS), ref, log=lambda *_: None)  # uninterrupted, in this process

    proc = subprocess.Popen(_cmd(cfg, killed), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (killed / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "metrics.json").exists()

    out = subprocess.run(_cmd(cfg, killed), check=True, env=ENV, capture_output=True, text=True)
    assert "resuming at task" in out.stdout
    a = json.loads((ref / "metrics.json").read_text())
    b = json.loads((killed / "metrics.json").read_text())
    assert b["run"]["resumed_from_task"] >= 1 and a["run"]["resumed_from_task"] is None
    assert a["accuracy"] == b["accuracy"] and a["summary"] == b["summary"] and a["memory"] == b["memory"]
    keep = ("ltm_cues", "ltm_bytes", "ltm_cues_per_class", "working_cues", "mean_cue_bytes")
    assert ([{k: t.get(k) for k in keep} for t in a["method_info"]["per_task"]]
            == [{k: t.get(k) for k in keep} for t in b["method_info"]["per_task"]])
    assert not (killed / "checkpoint.pt").exists()


DECODE = """
import sys
import numpy as np
from braincl import checkpoint
saved = checkpoint.load(sys.argv[1])
images, labels = saved["cues"].recall(saved["decoders"], 64, "cpu")
np.save(sys.argv[2], images.numpy())
np.save(sys.argv[3], labels)
"""


def test_cues_decode_identically_in_a_fresh_process(tmp_path):
    """Encode a task's cues here, decode them here, and decode them again from a checkpoint in a
    new interpreter (what a resumed or requeued run does): the images must be bit-identical."""
    from braincl import checkpoint, config
    from tests.conftest import build_learner

    learner, scenario = build_learner(config.load(None, SETS))
    task = scenario.task(0)
    learner.begin_task(task)
    cues = learner.encode_task(task)
    here_images, here_labels = cues.recall(learner.decoders, 64, "cpu")
    path = tmp_path / "cues.pt"
    checkpoint.save(path, {"cues": cues, "decoders": learner.decoders})

    subprocess.run([sys.executable, "-c", DECODE, str(path), str(tmp_path / "img.npy"), str(tmp_path / "lab.npy")],
                   check=True, env=ENV, capture_output=True)
    there_images, there_labels = np.load(tmp_path / "img.npy"), np.load(tmp_path / "lab.npy")
    assert there_images.shape == tuple(here_images.shape) and there_images.dtype == np.uint8
    assert np.array_equal(there_images, here_images.numpy()) and np.array_equal(there_labels, here_labels)
    assert there_images.std() > 0  # real images came back, not a constant
