"""Defaults that train: every data set's defaults carry a schedule, and ``braincl run`` on a minimal
MNIST 5k config (data set, method, budget only) fits the task it has just trained."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

DATASETS = Path(__file__).resolve().parents[1] / "braincl" / "defaults" / "datasets"


@pytest.mark.parametrize("path", sorted(DATASETS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_data_set_default_carries_a_schedule(path):
    train = yaml.safe_load(path.read_text()).get("train") or {}
    assert train.get("epochs", 0) >= 1 and train.get("batch_size", 0) >= 1, f"{path.name} has no schedule"


@pytest.mark.slow
def test_minimal_mnist5k_config_learns_the_task_just_trained(tmp_path):
    from braincl.cli import main

    exp = tmp_path / "minimal.yaml"
    exp.write_text("dataset: {name: mnist5k}\nmethod: {name: er}\nmemory: {budget: 200KB}\n")
    out = tmp_path / "out"
    # two tasks keep the test short; one thread, as on the 2-core CI machine
    assert main(["run", str(exp), "--out", str(out), "--quiet", "--set", "scenario.num_tasks=2",
                 "--set", "train.threads=1"]) == 0
    import json

    record = json.loads((out / "metrics.json").read_text())
    R = record["accuracy"]["tag"]
    assert record["config"]["train"]["epochs"] == 4 and record["config"]["train"]["batch_size"] == 32
    assert min(R[0][0], R[1][1]) >= 0.95, R
