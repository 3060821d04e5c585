"""Equal training for BrainCL, its memory-format controls, its minimum budget, and the BiC and
gen_replay fixes: each checked on what the method does, not on its configuration."""

from __future__ import annotations

import math
import re

import pytest

from braincl.memory import BudgetExceeded

from conftest import build_learner  # the runner's own set-up, without training


def backward_per_task(record, phases):
    return [sum(e["phases"].get(p, {}).get("backbone_backward", 0) for p in phases)
            for e in record["compute"]["per_task"]]


@pytest.mark.slow
def test_braincl_trains_no_more_than_er_and_follows_epochs(run_tiny, tmp_path):
    fast = {"method.params.codec_steps": 5}
    er = run_tiny("er", budget="60KB", out=tmp_path / "er")
    bcl = run_tiny("braincl", budget="60KB", out=tmp_path / "b1", **fast)
    er_bw, bcl_bw = backward_per_task(er, ["train"]), backward_per_task(bcl, ["wake", "sleep"])
    assert all(b > 0 for b in bcl_bw)
    assert all(b <= e for b, e in zip(bcl_bw, er_bw)), (bcl_bw, er_bw)
    assert bcl["compute"]["per_phase"]["codec"]["steps"] == 10  # encoding counted apart
    longer = run_tiny("braincl", budget="60KB", out=tmp_path / "b2", **fast, **{"train.epochs": 2})
    steps = lambda r: [r["compute"]["per_phase"][p]["steps"] for p in ("wake", "sleep")]  # noqa: E731
    assert steps(longer) == [2 * s for s in steps(bcl)]


def stated_minimum(tiny_cfg, **extra) -> int:
    with pytest.raises(BudgetExceeded) as err:
        build_learner(tiny_cfg("braincl", budget="1KB", **extra))
    return int(re.search(r"Give at least (\d+) bytes", str(err.value)).group(1))


@pytest.mark.slow
def test_braincl_runs_at_its_stated_minimum(tiny_cfg, run_tiny, tmp_path):
    fast = {"method.params.codec_steps": 20}
    need = stated_minimum(tiny_cfg, **fast)
    record = run_tiny("braincl", budget=str(need), out=tmp_path / "min", **fast)
    assert record["memory"]["final"]["charged_bytes"] <= need
    with pytest.raises(BudgetExceeded, match="Give at least"):
        build_learner(tiny_cfg("braincl", budget=str(need - 1), **fast))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["raw", "jpeg"])
def test_memory_format_controls_charge_their_items(fmt, tiny_cfg):
    from braincl.memory.jpeg import METADATA_BYTES, decode_jpeg

    learner, scenario = build_learner(tiny_cfg("braincl", budget="20KB", **{"method.params.memory_format": fmt}))
    for t in range(scenario.num_tasks):
        task = scenario.task(t)
        learner.begin_task(task)
        learner.train_task(task)
        learner.end_task(task)
        mem = learner.memory().as_dict(20_000)
        assert mem["charged_bytes"] <= 20_000 and mem["bytes"].get("decoders", 0) == 0
    ltm = learner.ltm
    per_class = set(ltm.per_class_count().values())
    assert len(per_class) == 1 and len(ltm) > 0  # class-balanced
    if fmt == "raw":
        assert ltm.nbytes() == len(ltm) * (28 * 28 + 2)
    else:
        from braincl.memory.jpeg import jpeg_tables, tables_nbytes

        assert ltm.nbytes() == sum(len(x) + METADATA_BYTES for _, x in ltm.items)
        q, stream = ltm.items[0]
        assert decode_jpeg(stream, jpeg_tables(q, 1)).shape == (1, 28, 28)
        assert mem["bytes"]["entropy_tables"] == tables_nbytes({q for q, _ in ltm.items}, 1) > 0
        assert learner.info()["jpeg_quality"]
    assert learner.info()["memory_format"] == fmt
    assert learner.decoders == []  # no codec was trained
    assert learner.history[-1]["ltm_cues_per_class"] == next(iter(per_class))


@pytest.mark.slow
def test_bic_bias_stage_runs_its_own_epochs_on_a_ceil_split(tiny_cfg):
    cfg = tiny_cfg("bic", budget="60KB", **{"method.params.bias_epochs": 7})
    learner, scenario = build_learner(cfg)
    for t in range(2):
        task = scenario.task(t)
        learner.engine.compute.task = t
        learner.begin_task(task)
        if t == 1:
            alpha_before = learner.bias
        learner.train_task(task)
        learner.end_task(task)
    quota = learner.quota()
    bias = learner.engine.compute.phases(1)["bias"]
    v = learner.val_sizes[0]
    batches = math.ceil(v / cfg["train"]["batch_size"])
    assert bias["steps"] == 7 * batches  # bias_epochs, not train.epochs (1 here)
    assert bias["backbone_backward"] == 0 and bias["backbone_forward"] == 7 * v
    assert v >= 4 * math.ceil(0.1 * quota)  # FACIL's ceil, every seen class represented
    assert alpha_before is None and learner.bias is not None
    assert learner.bias.alpha.item() != 1.0 or learner.bias.beta.item() != 0.0  # the layer learned


def test_gen_replay_generator_grows_with_budget(tiny_cfg):
    sizes = {}
    for budget in ("30KB", "60KB", "300KB"):
        learner, _ = build_learner(tiny_cfg("gen_replay", budget=budget))
        nbytes = learner.generator_nbytes()
        assert nbytes <= learner.budget.total
        wider = learner.build_generator(learner.width + 1)
        from braincl.memory.budget import module_nbytes

        assert module_nbytes(wider) > learner.budget.total  # the widest that fits
        sizes[budget] = nbytes
    assert sizes["30KB"] < sizes["60KB"] < sizes["300KB"]
