"""Compute recording: the per-phase counters, the engine's counting, and the record's section."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from braincl.compute import ComputeLog, FlopMeter, composition, measure, purpose, summarize


def test_summarize_sums_phases_by_hand():
    per_task = [{"task": 0, "phases": {"codec": {"steps": 2, "samples": 8, "backbone_forward": 0,
                                                  "backbone_backward": 0, "flops": 100, "wall_s": 0.5},
                                        "sleep": {"steps": 3, "samples": 6, "backbone_forward": 6,
                                                  "backbone_backward": 6, "flops": 30, "wall_s": 0.25}}},
                {"task": 1, "phases": {"sleep": {"steps": 1, "samples": 2, "backbone_forward": 2,
                                                 "backbone_backward": 2, "flops": 10, "wall_s": 0.25}}}]
    per_task[1]["phases"]["sleep"]["flops_by_purpose"] = {"train": 6, "recall": 4}  # a v4 phase beside v3 ones
    out = summarize(per_task)
    assert out["per_phase"]["sleep"] == {"steps": 4, "samples": 8, "backbone_forward": 8, "backbone_backward": 8,
                                         "flops": 40, "flops_by_purpose": {"train": 36, "recall": 4}, "wall_s": 0.5}
    assert out["training"]["flops"] == 40 and out["encoding"]["flops"] == 100 and out["encoding"]["steps"] == 2


def test_log_rejects_unknown_field_and_purpose():
    with pytest.raises(ValueError, match="unknown field"):
        ComputeLog().add("train", epochs=1)
    with pytest.raises(ValueError, match="unknown FLOP purpose"):
        ComputeLog().add("train", flops={"dreaming": 1})


def test_purpose_blocks_split_a_measurement_and_nest():
    a, b = torch.randn(8, 16), torch.randn(16, 4)
    one = 2 * 8 * 16 * 4  # FLOPs of one a @ b
    with measure("train") as split:
        a @ b
        with purpose("teacher"):
            a @ b
            with purpose("recall"):
                a @ b
                a @ b
    assert split == {"train": one, "teacher": one, "recall": 2 * one}
    with purpose("teacher"):  # no measurement in progress: nothing happens
        a @ b


def test_meter_counts_each_composition_once_and_every_step():
    calls = []
    meter = FlopMeter()
    for n in (4, 4, 2, 4, 2, 0):
        x = torch.randn(n, 16)
        with meter.step(composition((x,), None)):
            calls.append(n)
            x @ torch.randn(16, 8)
    assert meter.measured == 3  # compositions 4, 2 and 0 rows
    assert meter.totals == {"train": 2 * 16 * 8 * (4 + 4 + 2 + 4 + 2)}
    assert len(calls) == 6  # every step ran


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
    assert train["flops_by_purpose"] == {"train": train["flops"]}
    _, frozen = _fit(True, freeze_backbone=True)
    assert frozen["wake"]["backbone_forward"] == 16 and frozen["wake"]["backbone_backward"] == 0


def brute_force_flops(engine, net, loader, replay, step) -> int:
    """Every step measured on its own: what the engine's per-composition count must equal."""
    from braincl.engine import _cycle

    total, replay_iter = 0, _cycle(replay) if replay is not None else None
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    for batch in loader:
        r = next(replay_iter) if replay_iter is not None else None
        with measure() as split:
            loss = step(batch, r)
            opt.zero_grad()
            loss.backward()
        total += sum(split.values())
    return total


def test_every_step_is_counted_as_the_composition_it_has():
    """A replay batch that starts empty and a short last batch: the engine's FLOPs equal the sum of
    every step measured alone, where the first step times the steps would not."""
    from braincl.engine import Engine

    torch.manual_seed(0)
    net = Net()
    engine = Engine({"epochs": 1, "batch_size": 4, "optimizer": {"name": "sgd", "lr": 0.0}, "progress": False},
                    torch.device("cpu"))
    data = torch.utils.data.TensorDataset(torch.randn(10, 1, 4, 4), torch.randint(0, 3, (10,)))
    replays = [(torch.zeros(0, 1, 4, 4), torch.zeros(0, dtype=torch.long))] + [
        (torch.randn(4, 1, 4, 4), torch.randint(0, 3, (4,)))] * 2

    def step(batch, replay):
        x, y = batch[0], batch[1]
        if replay is not None and len(replay[0]):
            x, y = torch.cat([x, replay[0]]), torch.cat([y, replay[1]])
        return nn.functional.cross_entropy(net(x), y)

    loader = engine.loader(data, shuffle=False)  # batches of 4, 4, 2
    engine.fit(net, loader, step=step, replay=replays)
    counted = engine.compute.phases(0)["train"]["flops"]
    expected = brute_force_flops(engine, net, engine.loader(data, shuffle=False), replays, step)
    assert counted == expected
    first_times_steps = brute_force_flops(engine, net, [next(iter(engine.loader(data, shuffle=False)))],
                                          replays[:1], step) * 3
    assert first_times_steps < 0.8 * counted  # what the old count would have said


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
    assert record["schema_version"] == SCHEMA_VERSION == 4
    comp = record["compute"]
    assert [e["task"] for e in comp["per_task"]] == [0, 1]
    train = comp["per_phase"]["train"]
    assert train["steps"] > 0 and train["flops"] > 0 and train["backbone_backward"] == train["backbone_forward"] > 0
    assert comp["training"]["flops"] == train["flops"] and comp["encoding"]["steps"] == 0


def flops_per_backbone_sample(record, task: int, phase: str = "train") -> float:
    stats = record["compute"]["per_task"][task]["phases"][phase]
    return stats["flops"] / stats["backbone_forward"]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["er", "der", "derpp"])
def test_reservoir_task_one_is_counted_with_the_replay_it_carries(method, run_tiny):
    """A reservoir buffer is empty at the first step of task 1 and full from the second step on:
    task 1's FLOPs per sample equal task 2's (the same composition once the buffer has samples),
    where the first step's count times the steps came out 1.5-2x low."""
    record = run_tiny(method, budget="60KB", **{"method.params.buffer": "reservoir"})
    first, second = (flops_per_backbone_sample(record, t) for t in (0, 1))
    assert abs(first / second - 1) < 0.10, (first, second)
    task1 = record["compute"]["per_task"][0]["phases"]["train"]
    assert task1["backbone_forward"] > 32 * task1["steps"]  # the replay batches were there and counted


@pytest.mark.slow
def test_braincl_records_encode_recall_and_selection_flops(run_tiny):
    record = run_tiny("braincl", budget="60KB", **{"method.params.codec_steps": 5})
    for entry in record["compute"]["per_task"]:
        by = {phase: stats["flops_by_purpose"] for phase, stats in entry["phases"].items()}
        assert set(by["codec"]) == {"train", "encode"}
        assert set(by["wake"]) == {"train", "recall"} and set(by["sleep"]) == {"train", "recall"}
        assert set(by["memory"]) == {"recall", "selection"}  # closest_to_mean on recalled cues
        for stats in entry["phases"].values():
            assert stats["flops"] == sum(stats["flops_by_purpose"].values()) > 0
    comp = record["compute"]
    assert comp["encoding"]["flops"] == comp["per_phase"]["codec"]["flops"] + comp["per_phase"]["memory"]["flops"]
    # every current-task cue is decoded once for the wake, once for the transfer, once for the sleep
    wake, memory = (record["compute"]["per_task"][0]["phases"][p]["flops_by_purpose"]["recall"] for p in ("wake", "memory"))
    assert wake == memory


@pytest.mark.slow
@pytest.mark.parametrize("method, phase, purposes", [
    ("icarl", "train", {"train", "teacher"}), ("icarl", "memory", {"selection", "class_means"}),
    ("derpp", "memory", {"logits"}), ("lwf", "train", {"train", "teacher"}),
    ("bic", "train", {"train", "teacher"}), ("wa", "train", {"train", "teacher"}),
    ("gen_replay", "generator", {"train", "sample", "labels"}), ("ewc", "memory", {"fisher"}),
])
def test_teacher_selection_logit_and_class_mean_passes_are_counted(method, phase, purposes, run_tiny):
    extra = {"method.params.selection": "herding"} if method == "icarl" else {}
    record = run_tiny(method, budget=None if method == "ewc" else "60KB", **extra)
    by = record["compute"]["per_task"][1]["phases"][phase]["flops_by_purpose"]
    assert set(by) == purposes and all(v > 0 for v in by.values()), by
    if "teacher" in purposes:  # no teacher on the first task
        assert "teacher" not in record["compute"]["per_task"][0]["phases"][phase]["flops_by_purpose"]
