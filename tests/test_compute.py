"""Compute recording: the per-phase counters, the engine's counting, and the record's section."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from braincl.compute import ComputeLog, summarize


def test_summarize_sums_phases_by_hand():
    per_task = [{"task": 0, "phases": {"codec": {"steps": 2, "samples": 8, "backbone_forward": 0,
                                                  "backbone_backward": 0, "flops": 100, "wall_s": 0.5},
                                        "sleep": {"steps": 3, "samples": 6, "backbone_forward": 6,
                                                  "backbone_backward": 6, "flops": 30, "wall_s": 0.25}}},
                {"task": 1, "phases": {"sleep": {"steps": 1, "samples": 2, "backbone_forward": 2,
                                                 "backbone_backward": 2, "flops": 10, "wall_s": 0.25}}}]
    out = summarize(per_task)
    assert out["per_phase"]["sleep"] == {"steps": 4, "samples": 8, "backbone_forward": 8, "backbone_backward": 8,
                                         "flops": 40, "wall_s": 0.5}
    assert out["training"]["flops"] == 40 and out["encoding"]["flops"] == 100 and out["encoding"]["steps"] == 2


def test_log_rejects_unknown_field():
    with pytest.raises(ValueError, match="unknown field"):
        ComputeLog().add("train", epochs=1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU())
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.backbone(x))


def _fit(count_flops: bool, freeze_backbone: bool = False):
    from braincl.engine import Engine

    torch.manual_seed(0)
    net = Net()
    engine = Engine({"epochs": 2, "batch_size": 4, "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
                     "scheduler": {"name": "cosine"}, "progress": False}, torch.device("cpu"))
    engine.count_flops = count_flops
    data = torch.utils.data.TensorDataset(torch.randn(10, 1, 4, 4), torch.randint(0, 3, (10,)))
    if freeze_backbone:
        net.backbone.requires_grad_(False)
    engine.fit(net, engine.loader(data, shuffle=True, drop_last=True), phase="wake" if freeze_backbone else "train")
    return net, engine.compute.phases(0)


def test_engine_counts_steps_samples_backbone_and_flops():
    _, phases = _fit(True)
    train = phases["train"]
    assert train["steps"] == 4 and train["samples"] == 16  # 2 epochs x floor(10 / 4) batches of 4
    assert train["backbone_forward"] == train["backbone_backward"] == 16
    # Linear 16->8 and 8->3 on 4 samples: forward 2*4*(16*8+8*3) FLOPs, backward twice that
    # (the first layer's input needs no gradient, but FlopCounterMode counts the mm it runs).
    forward = 2 * 4 * (16 * 8 + 8 * 3)
    assert 2 * forward <= train["flops"] / train["steps"] <= 3 * forward
    _, frozen = _fit(True, freeze_backbone=True)
    assert frozen["wake"]["backbone_forward"] == 16 and frozen["wake"]["backbone_backward"] == 0


def test_counting_leaves_training_bit_identical():
    a, with_flops = _fit(True)
    b, without = _fit(False)
    assert with_flops["train"]["flops"] > 0 and without["train"]["flops"] == 0
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_weighted_loader_draws_num_samples():
    from braincl.engine import Engine

    engine = Engine({"epochs": 1, "batch_size": 4, "progress": False}, torch.device("cpu"))
    data = torch.utils.data.TensorDataset(torch.arange(10.0), torch.zeros(10, dtype=torch.long))
    weights = torch.tensor([1.0] * 2 + [0.0] * 8, dtype=torch.double)
    loader = engine.loader(data, shuffle=True, drop_last=True, weights=weights, num_samples=9)
    drawn = torch.cat([b[0] for b in loader])
    assert len(drawn) == 8 and set(drawn.tolist()) <= {0.0, 1.0}  # two whole batches, only weighted samples


@pytest.mark.slow
def test_record_has_compute_section(run_tiny):
    from braincl.record import SCHEMA_VERSION

    record = run_tiny("er", budget="60KB")
    assert record["schema_version"] == SCHEMA_VERSION == 3
    comp = record["compute"]
    assert [e["task"] for e in comp["per_task"]] == [0, 1]
    train = comp["per_phase"]["train"]
    assert train["steps"] > 0 and train["flops"] > 0 and train["backbone_backward"] == train["backbone_forward"] > 0
    assert comp["training"]["flops"] == train["flops"] and comp["encoding"]["steps"] == 0
