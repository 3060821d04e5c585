"""The full-shape benchmark's machinery and BrainCL's spill path: the memory-mapped arrays hold the
same bytes as the in-RAM ones, and the phase tracker records what it is given."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def _store_and_decoder():
    from braincl.codec import build_codec, encode, freeze
    from braincl.memory.cues import CueStore

    torch.manual_seed(0)
    codec = build_codec(1, 8, 8, depth=2)
    images = torch.randint(0, 256, (10, 1, 16, 16), dtype=torch.uint8)
    completion = freeze(codec, (16, 16), "fp32", 16)
    strings, shape = encode(codec, images, 4)
    store = CueStore()
    store.add(0, strings[:6], np.arange(6) % 2, shape)
    store.add(1, strings[6:], np.arange(4) % 2 + 2, shape)
    return store, [completion, completion]


def test_recall_into_a_memory_mapped_file_equals_recall_in_ram(monkeypatch):
    store, decoders = _store_and_decoder()
    monkeypatch.setenv("BRAINCL_SPILL", "never")
    ram, labels = store.recall(decoders, batch_size=4)
    monkeypatch.setenv("BRAINCL_SPILL", "always")
    mapped, labels2 = store.recall(decoders, batch_size=4)
    assert isinstance(mapped, torch.Tensor) and mapped.shape == ram.shape == (10, 1, 16, 16)
    assert torch.equal(mapped, ram) and np.array_equal(labels, labels2)
    assert ram.float().std() > 0  # decoded images, not an empty buffer


def test_spill_decision_follows_the_job_request(monkeypatch):
    from braincl.memory import spill

    monkeypatch.setenv("BRAINCL_SPILL", "auto")
    monkeypatch.setenv("BRAINCL_HOST_MEMORY", "100GB")
    assert not spill.should_spill(2**20)
    monkeypatch.setenv("BRAINCL_HOST_MEMORY", "10MB")  # below this process's own resident memory
    assert spill.should_spill(2**20)
    monkeypatch.delenv("BRAINCL_HOST_MEMORY")
    monkeypatch.setenv("SLURM_MEM_PER_NODE", "1")    # 1 MB
    assert spill.memory_request() == 2**20 and spill.should_spill(1)
    monkeypatch.setenv("BRAINCL_SPILL", "sometimes")
    with pytest.raises(ValueError, match="BRAINCL_SPILL"):
        spill.should_spill(1)


def test_read_images_equals_read_many(monkeypatch):
    from braincl.data.base import TensorSource
    from braincl.memory.spill import read_images

    source = TensorSource(torch.randint(0, 256, (20, 3, 5, 5), dtype=torch.uint8), np.arange(20))
    idx = np.array([3, 1, 19, 7, 8])
    monkeypatch.setenv("BRAINCL_SPILL", "always")
    assert torch.equal(read_images(source, idx, "test", chunk=2), source.read_many(idx))


def test_phase_tracker_nests_and_measures():
    from paper_shape import PhaseTracker

    tracker = PhaseTracker()
    outer = tracker.start("outer")
    inner = tracker.start("inner")
    block = np.ones(40 * 2**20, dtype=np.uint8)  # 40 MiB touched inside the inner phase
    time.sleep(0.05)
    tracker.stop(inner, 5)
    del block
    tracker.stop(outer, 10)
    rows = {r["phase"]: r for r in tracker.rows}
    assert rows["inner"]["images"] == 5 and rows["outer"]["images"] == 10
    assert rows["inner"]["seconds"] >= 0.05 and rows["outer"]["seconds"] < rows["inner"]["seconds"]
    assert rows["outer"]["peak_rss_bytes"] >= rows["inner"]["peak_rss_bytes"] >= 40 * 2**20


def test_committed_paper_shape_record_covers_every_paper_shape():
    import json

    record = json.loads((ROOT / "results" / "benchmarks" / "paper_shape.json").read_text())
    runs = {(r["case"], r["method"]) for r in record["runs"]}
    for case in ("imagenet100_224", "core50_128", "bloodmnist_224", "organamnist_28"):
        assert {(case, "braincl"), (case, "er")} <= runs
    for r in record["runs"]:
        assert r["resolved"]["backbone"] == "resnet18" and r["cuts"]["scenario.num_tasks"] == 2
        assert r["child_ru_maxrss_bytes"] > 0 and all(p["seconds"] >= 0 for p in r["phases"])
        if r["method"] == "braincl":
            assert r["resolved"]["codec"]["N"] == 128 and r["resolved"]["codec"]["M"] == 192
            assert {"codec", "encode", "wake", "sleep", "eval"} <= set(r["by_phase"])
    assert record["machine"]["cpu"] and record["date"] and record["command"].startswith("python benchmarks/paper_shape.py")


def test_paper_grid_job_count_in_the_docs_is_the_dry_runs():
    """docs/paper_grid.md and README.md state what `snakemake all -n --configfile config/paper.yaml` plans."""
    import os
    import re
    import subprocess

    text = (ROOT / "docs" / "paper_grid.md").read_text()
    stated = re.search(r"plans \*\*(\d+) jobs\*\* \((\d+) training", text)
    assert stated, "docs/paper_grid.md must say: plans **N jobs** (M training ..."
    snakemake = Path(sys.executable).with_name("snakemake")
    out = subprocess.run([str(snakemake), "all", "-n", "--configfile", "config/paper.yaml"], cwd=ROOT,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    log = out.stdout + out.stderr
    total = int(re.search(r"^total\s+(\d+)\s*$", log, re.M).group(1))
    train = int(re.search(r"^train\s+(\d+)\s*$", log, re.M).group(1))
    assert (int(stated.group(1)), int(stated.group(2))) == (total, train)
    readme = re.search(r"(\d+) jobs, (\d+) of them training", (ROOT / "README.md").read_text())
    assert readme, "README.md's paper-grid section must say: N jobs, M of them training"
    assert (int(readme.group(1)), int(readme.group(2))) == (total, train)
    assert "results/runs/" not in log.replace("results/paper/runs/", "")  # never the committed MNIST records
