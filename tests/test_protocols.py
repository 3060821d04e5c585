"""Covariate shift, long-tailed and unknown-class protocols: the pure pieces on hand-made inputs, then
each protocol through a tiny MNIST 5k run (results under metrics.json's protocols.<name>)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from braincl.config import ConfigError
from braincl.protocols.covariate_shift import CONSTANTS, CORRUPTIONS, corrupt, table_for
from braincl.protocols.long_tail import longtail_counts
from braincl.protocols.unknown_classes import known_vs_unknown_auroc


def scene(size: int, channels: int, rng) -> torch.Tensor:
    """A gradient with a few flat rectangles (edges for blur and JPEG to act on) and mild noise."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.stack([200 * xx + 20, 180 * yy + 30, 120 * (1 - xx) + 40], -1)
    for _ in range(4):
        r0, c0 = rng.integers(0, size - size // 4, 2)
        h, w = rng.integers(size // 8, size // 2, 2)
        img[r0:r0 + h, c0:c0 + w] = rng.integers(0, 256, 3)
    img = np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)[..., :channels]
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


# ------------------------------------------------------------------ corruptions
@pytest.mark.parametrize("size,channels", [(32, 3), (64, 1), (224, 3)])
def test_corruptions_change_images_and_severity_orders_the_change(size, channels):
    rng = np.random.default_rng(0)
    images = [scene(size, channels, rng) for _ in range(10 if size < 224 else 5)]
    table = table_for(size)
    assert table == {32: "cifar", 64: "tiny_imagenet", 224: "imagenet"}[size]
    for name in CORRUPTIONS:
        mae = []
        for sev in range(1, 6):
            diffs = []
            for i, img in enumerate(images):
                out = corrupt(img, name, sev, np.random.default_rng([7, sev, i]), table)
                assert out.dtype == torch.uint8 and out.shape == img.shape
                diffs.append((out.float() - img.float()).abs().mean().item())
            mae.append(float(np.mean(diffs)))
        assert mae[0] > 0.5, f"{name} barely changes {size}px images at severity 1: {mae}"
        steps = list(zip(mae, mae[1:]))
        if table == "cifar" and name == "motion_blur":
            # CIFAR-10-C's severities 3 and 4 are (radius 6, sigma 2) and (8, 2): the extra taps weigh
            # below exp(-4.5), so the two are nearly the same blur in the reference too.
            assert abs(mae[3] - mae[2]) < 0.05 * mae[2]
            steps = steps[:2] + steps[3:]
        assert all(b > a for a, b in steps), f"{name} at {size}px: mean abs change {mae} not increasing"


def test_corruptions_are_seeded_and_use_the_reference_constants():
    img = scene(32, 3, np.random.default_rng(1))
    for name in CORRUPTIONS:
        a = corrupt(img, name, 3, np.random.default_rng(5), "cifar")
        b = corrupt(img, name, 3, np.random.default_rng(5), "cifar")
        assert torch.equal(a, b)
    noisy = [corrupt(img, "gaussian_noise", 2, np.random.default_rng(s), "cifar") for s in (1, 2)]
    assert not torch.equal(*noisy)
    # contrast at severity 5 of ImageNet-C scales deviations from the channel mean by 0.05
    out = corrupt(img, "contrast", 5, np.random.default_rng(0), "imagenet").float()
    x = img.float()
    expected = (x - x.mean(dim=(1, 2), keepdim=True)) * 0.05 + x.mean(dim=(1, 2), keepdim=True)
    assert (out - expected).abs().max() <= 0.5 + 1e-4
    assert CONSTANTS["imagenet"]["jpeg"] == [25, 18, 15, 10, 7]
    with pytest.raises(ValueError, match="severity"):
        corrupt(img, "jpeg", 6, np.random.default_rng(0))


# ------------------------------------------------------------------ long tail
def test_longtail_profile_by_hand():
    # n_i = floor(100 * 10^(-i/4)): 100, 56.2, 31.6, 17.8, 10
    assert longtail_counts(5, 100, 10) == [100, 56, 31, 17, 10]
    assert longtail_counts(2, 40, 4) == [40, 10]
    assert longtail_counts(1, 40, 4) == [40]
    assert longtail_counts(3, 10, 100, minimum=2) == [10, 2, 2]  # floor(10/10)=1 -> 2, floor(0.1)=0 -> 2


def test_long_tail_run_trains_on_the_profile_and_records_it(tiny_cfg, tmp_path):
    from braincl.protocols.long_tail import LongTail
    from braincl.runner import build_data, run_experiment
    from braincl.scenario import Scenario

    cfg = tiny_cfg("finetune", None, protocols="{long_tail: {rho: 4}}")
    record = run_experiment(cfg, tmp_path / "lt", log=lambda *_: None)
    per_task = record["protocols"]["long_tail"]["per_task"]
    assert len(per_task) == 2
    for info in per_task:
        # 40 training images per class in the tiny MNIST split: n_max = 40, C = 2, rho = 4
        assert info["available"] == [40, 40]
        assert info["counts"] == info["target_counts"] == [40, 10]
    # the subset the learner got is the recorded one (same seed, same draw)
    splits = build_data(cfg)
    scenario = Scenario.from_config(splits, cfg["scenario"])
    task = LongTail({"rho": 4}, cfg["seed"]).adjust_task(scenario.task(0))
    ranked = per_task[0]["classes"]
    assert [int((task.train.labels == c).sum()) for c in ranked] == [40, 10]
    assert len(task.test) == 40  # test sets stay balanced


def test_long_tail_bad_params_fail_before_training(tiny_cfg, tmp_path):
    from braincl.protocols.long_tail import LongTail
    from braincl.runner import run_experiment

    cfg = tiny_cfg("finetune", None, protocols="{long_tail: {rho: 0.5}}")
    with pytest.raises(ConfigError, match="protocols.long_tail.rho"):
        run_experiment(cfg, tmp_path / "bad", log=lambda *_: None)
    assert not (tmp_path / "bad" / "metrics.json").exists()
    with pytest.raises(ConfigError, match="protocols.long_tail: unknown parameter.*rhoo"):
        LongTail({"rhoo": 4}, 0)
    with pytest.raises(ConfigError, match="protocols.long_tail.order"):
        LongTail({"order": "sorted"}, 0)


# ------------------------------------------------------------------ unknown classes
def test_auroc_scores_by_hand():
    def logits(p):  # two-class logits [d, 0] whose softmax maximum is p
        return torch.tensor([[math.log(q / (1 - q)), 0.0] for q in p])

    known, unknown = logits([0.9, 0.6]), logits([0.7, 0.55])
    # pairs (known > unknown): 0.9>0.7, 0.9>0.55, 0.6<0.7, 0.6>0.55 -> 3 of 4
    out = known_vs_unknown_auroc(known, unknown)
    assert out["auroc_msp"] == pytest.approx(0.75)
    assert out["auroc_energy"] == pytest.approx(0.75)  # logsumexp is monotone in d here
    assert known_vs_unknown_auroc(unknown, known)["auroc_msp"] == pytest.approx(0.25)


def test_unknown_classes_are_never_trained_and_auroc_is_reported(tiny_cfg, tmp_path, monkeypatch):
    from braincl.registry import METHODS
    from braincl.runner import run_experiment

    trained = []
    cls = METHODS.get("finetune")
    original = cls.train_task

    def spy(self, task):
        trained.extend(task.train.source.targets[task.train.indices].tolist())  # original class ids
        return original(self, task)

    monkeypatch.setattr(cls, "train_task", spy)
    cfg = tiny_cfg("finetune", None, protocols="{unknown_classes: {classes: [3, 7]}}", **{"scenario.num_tasks": "null"})
    record = run_experiment(cfg, tmp_path / "unk", log=lambda *_: None)
    res = record["protocols"]["unknown_classes"]
    order = record["scenario"]["class_order"]
    assert sorted(order) == [0, 1, 2, 4, 5, 6, 8, 9] and record["scenario"]["held_out_classes"] == [3, 7]
    assert set(trained) == set(order) and not {3, 7} & set(trained)
    assert res["held_out_classes"] == [3, 7] and res["unknown_samples"] == 2 * 20
    assert res["known_samples"] == sum(record["accuracy"]["test_samples_per_task"]) == 8 * 20
    assert 0.0 <= res["auroc_msp"] <= 1.0 and 0.0 <= res["auroc_energy"] <= 1.0


def test_unknown_classes_drawn_with_a_seed_and_validated():
    from braincl.data.base import SplitSources, TensorSource
    from braincl.protocols.unknown_classes import UnknownClasses

    targets = np.repeat(np.arange(10), 2)
    src = TensorSource(torch.zeros(20, 1, 4, 4, dtype=torch.uint8), targets)
    splits = SplitSources(train=src, test=src, class_names=[str(i) for i in range(10)])
    a = UnknownClasses({"num": 3, "seed": 4}, 0).exclude_classes(splits)
    assert a == UnknownClasses({"num": 3, "seed": 4}, 99).exclude_classes(splits) and len(a) == 3
    assert a != UnknownClasses({"num": 3, "seed": 5}, 0).exclude_classes(splits)
    with pytest.raises(ConfigError, match="either classes"):
        UnknownClasses({"classes": [1], "num": 2}, 0)
    with pytest.raises(ConfigError, match="outside"):
        UnknownClasses({"classes": [10]}, 0).exclude_classes(splits)
    with pytest.raises(ConfigError, match="no known class"):
        UnknownClasses({"num": 10}, 0).exclude_classes(splits)


# ------------------------------------------------------------------ covariate shift end to end
def test_covariate_shift_run_records_every_corruption_and_severity(run_tiny):
    record = run_tiny("finetune", None, protocols="{covariate_shift: {corruptions: [gaussian_noise, jpeg], "
                                                  "severities: [1, 5], max_per_task: null}}")
    res = record["protocols"]["covariate_shift"]
    assert set(res["accuracy"]) == {"gaussian_noise", "jpeg"} and res["severities"] == [1, 5]
    assert all(len(row) == 2 and all(0 <= a <= 1 for a in row) for row in res["accuracy"].values())
    assert res["constants_table"] == "cifar" and res["constants"]["jpeg"] == [80, 65, 58, 50, 40]
    assert res["samples"] == sum(record["accuracy"]["test_samples_per_task"])
    # the protocol's clean pass is the headline pooled accuracy on all seen tasks
    assert res["clean"] == pytest.approx(record["summary"]["last_acc_sample"], abs=1e-9)


def test_covariate_shift_bad_params_name_the_key():
    from braincl.protocols.covariate_shift import CovariateShift

    with pytest.raises(ConfigError, match="protocols.covariate_shift.corruptions"):
        CovariateShift({"corruptions": ["fog"]}, 0)
    with pytest.raises(ConfigError, match="protocols.covariate_shift.severities"):
        CovariateShift({"severities": [0, 6]}, 0)
    with pytest.raises(ConfigError, match="unknown parameter"):
        CovariateShift({"severity": [1]}, 0)
