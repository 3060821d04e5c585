"""The validation split: every data set has one (carved from its training data, seeded and
class-stratified, or its own official split), it shares no image with training or test, learners
never see it, and ``eval.split: val`` computes the reported accuracy on it and says so."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from braincl import config
from braincl.data.base import DataError, carve_validation
from braincl.runner import build_data, run_experiment
from braincl.scenario import Scenario

from fixtures_data import write_core50, write_image_folder, write_imagenet_tree, write_medmnist

TINY = {
    "model.backbone": "resnet18_slim", "model.params.width": 4, "model.params.stem": "small",
    "train.epochs": 1, "train.batch_size": 8, "train.threads": 1, "train.progress": False,
    "method.name": "finetune", "scenario.initial_classes": 2, "scenario.increment": 2, "scenario.num_tasks": 2,
}


def load(**items):
    return config.load(None, [f"{k}={v}" for k, v in {**TINY, **items}.items()])


def image_hashes(source) -> list[str]:
    return [hashlib.sha1(source.read(i).numpy().tobytes()).hexdigest() for i in range(len(source))]


def assert_disjoint(splits) -> None:
    """No image of the validation split is a training or test image: by index into the source the
    split was carved from (where it was carved) and by content (always)."""
    train, val, test = (set(image_hashes(s)) for s in (splits.train, splits.val, splits.test))
    assert val and train
    assert not (val & train) and not (val & test) and not (train & test)
    if hasattr(splits.val, "parent_indices"):
        assert splits.val.parent is splits.train.parent
        assert not set(splits.val.parent_indices) & set(splits.train.parent_indices)
        everything = np.sort(np.concatenate([splits.val.parent_indices, splits.train.parent_indices]))
        assert np.array_equal(everything, np.arange(len(splits.train.parent)))


def assert_learners_see_no_validation_image(cfg, splits) -> None:
    scenario = Scenario.from_config(splits, cfg["scenario"])
    val = set(image_hashes(splits.val))
    for t in range(scenario.num_tasks):
        task = scenario.task(t)
        seen = {hashlib.sha1(task.train.source.read(int(i)).numpy().tobytes()).hexdigest() for i in task.train.indices}
        assert not seen & val
        assert sorted(set(task.val.labels.tolist())) == task.classes


# ------------------------------------------------------------------ every data set
def test_mnist5k_keeps_50_of_400_per_class_for_validation():
    cfg = config.load(None, ["method.name=finetune"])
    splits = build_data(cfg)
    assert np.bincount(splits.val.targets).tolist() == [50] * 10
    assert np.bincount(splits.train.targets).tolist() == [350] * 10
    assert len(splits.test) == 1000
    assert splits.info["validation"] == {"source": "train", "per_class": None, "fraction": 0.125, "seed": 0,
                                         "samples": 500, "train_samples": 3500}
    assert_disjoint(splits)
    assert_learners_see_no_validation_image(cfg, splits)


@pytest.mark.slow
def test_full_mnist_keeps_a_tenth_of_each_class_for_validation():
    cfg = config.load(None, ["dataset.name=mnist", "method.name=finetune"])
    splits = build_data(cfg)
    full = np.bincount(splits.train.parent.targets)
    assert np.bincount(splits.val.targets).tolist() == np.ceil(full / 10).astype(int).tolist()
    assert len(splits.val) + len(splits.train) == 60_000
    assert not set(splits.val.parent_indices) & set(splits.train.parent_indices)
    val, test = set(image_hashes(splits.val)), set(image_hashes(splits.test))
    assert len(val & test) <= 5  # MNIST holds a handful of byte-identical train/test digits; none are ours


def test_medmnist_uses_its_official_val(tmp_path):
    write_medmnist(tmp_path / "med", "bloodmnist", per_class={"train": 4, "val": 2, "test": 2})
    cfg = load(**{"dataset.name": "medmnist", "dataset.root": str(tmp_path / "med"), "dataset.params.flag": "bloodmnist"})
    splits = build_data(cfg)
    assert splits.info["validation"]["source"] == "official" and len(splits.val) == 16
    assert len(splits.train) == 32  # nothing carved from train
    assert_disjoint(splits)
    assert_learners_see_no_validation_image(cfg, splits)


def test_imagenet100_carves_validation_from_train(tmp_path):
    wnids = ["n01440764", "n01443537", "n01484850", "n01491361"]
    write_imagenet_tree(tmp_path / "imnet", wnids, n_train=5, n_val=2)
    (tmp_path / "list.txt").write_text("\n".join(wnids) + "\n")
    cfg = load(**{"dataset.name": "imagenet100", "dataset.root": str(tmp_path / "imnet"),
                  "dataset.params.class_list": str(tmp_path / "list.txt"), "dataset.params.resolution": 32,
                  "dataset.transforms.train": "[{name: RandomResizedCrop, size: 32, antialias: true}]"})
    splits = build_data(cfg)
    assert np.bincount(splits.val.targets).tolist() == [1] * 4  # ceil(0.1 * 5)
    assert np.bincount(splits.train.targets).tolist() == [4] * 4
    assert len(splits.test) == 8  # the ILSVRC val/ folder stays the test set
    files = lambda s: {path for path, _ in s.samples}  # noqa: E731
    assert not files(splits.val) & files(splits.train)
    assert_disjoint(splits)
    assert_learners_see_no_validation_image(cfg, splits)


def test_core50_carves_validation_from_the_training_sessions(tmp_path):
    write_core50(tmp_path, sessions=[1, 2, 3], objects=[1, 2, 6, 7], frames=3)
    cfg = load(**{"dataset.name": "core50", "dataset.root": str(tmp_path), "dataset.params.resolution": 32,
                  "dataset.params.objects": "[1, 2, 6, 7]", "dataset.params.train_sessions": "[1, 2]",
                  "dataset.params.test_sessions": "[3]", "dataset.transforms.train": "[]"})
    splits = build_data(cfg)
    assert np.bincount(splits.val.targets).tolist() == [1] * 4  # ceil(0.1 * 6) frames per object
    assert_disjoint(splits)
    assert_learners_see_no_validation_image(cfg, splits)


@pytest.mark.parametrize("counts,source", [({"train": 5, "test": 2, "val": 2}, "official"),
                                           ({"train": 5, "val": 2}, "train"),
                                           ({".": 8}, "train")])
def test_imagefolder_validation_for_each_layout(tmp_path, counts, source):
    write_image_folder(tmp_path / "mine", ["a", "b", "c", "d"], counts)
    cfg = load(**{"dataset.name": "imagefolder", "dataset.root": str(tmp_path / "mine")})
    splits = build_data(cfg)
    assert splits.info["validation"]["source"] == source
    assert_disjoint(splits)
    assert_learners_see_no_validation_image(cfg, splits)


# ------------------------------------------------------------------ the rule
def test_carving_is_seeded_and_a_different_seed_draws_other_images():
    base = build_data(config.load(None, ["method.name=finetune", "dataset.validation.source=none"]))
    first, info = carve_validation(base, {"source": "train", "fraction": 0.125, "seed": 0})
    again, _ = carve_validation(base, {"source": "train", "fraction": 0.125, "seed": 0})
    other, _ = carve_validation(base, {"source": "train", "fraction": 0.125, "seed": 1})
    assert np.array_equal(first.val.parent_indices, again.val.parent_indices)
    assert not np.array_equal(first.val.parent_indices, other.val.parent_indices)
    by_count, _ = carve_validation(base, {"source": "train", "per_class": 50, "seed": 0})
    assert np.array_equal(by_count.val.parent_indices, first.val.parent_indices)  # 50 of 400 either way
    assert info["seed"] == 0 and info["samples"] == 500


def test_bad_validation_settings_are_refused_with_the_key_to_change(tmp_path):
    base = build_data(config.load(None, ["method.name=finetune", "dataset.validation.source=none"]))
    with pytest.raises(DataError, match="leaves class '0' no training image"):
        carve_validation(base, {"source": "train", "per_class": 400})
    with pytest.raises(DataError, match="exactly one of per_class and fraction"):
        carve_validation(base, {"source": "train", "per_class": 5, "fraction": 0.1})
    with pytest.raises(DataError, match="no validation split of its own"):
        carve_validation(base, {"source": "official"})
    with pytest.raises(config.ConfigError, match="validation.fraction"):
        config.load(None, ["method.name=finetune", "dataset.validation.fraction=1.5"])


# ------------------------------------------------------------------ evaluating on it
def test_eval_split_val_reports_validation_accuracy_and_says_so(tmp_path):
    items = {**TINY, "dataset.params.train_per_class": 40, "dataset.params.test_per_class": 20,
             "eval.split": "val", "eval.spectrum": False}
    record = run_experiment(config.load(None, [f"{k}={v}" for k, v in items.items()]), tmp_path / "val",
                            log=lambda *_: None)
    assert record["splits"]["accuracy"] == "val" and record["splits"]["protocols"] == "test"
    assert record["splits"]["validation"]["samples"] == 50  # ceil(0.125 * 40) = 5 per class
    assert record["accuracy"]["test_samples_per_task"] == [10, 10]  # the validation images of each task
    items["eval.split"] = "test"
    test = run_experiment(config.load(None, [f"{k}={v}" for k, v in items.items()]), tmp_path / "test",
                          log=lambda *_: None)
    assert test["splits"]["accuracy"] == "test" and test["accuracy"]["test_samples_per_task"] == [40, 40]
    # the same training either way: only the images the accuracy is computed on differ
    assert test["memory"] == record["memory"]


def test_eval_split_val_without_a_validation_split_is_refused(tmp_path):
    cfg = load(**{"eval.split": "val", "dataset.validation.source": "none"})
    with pytest.raises(config.ConfigError, match="dataset.validation.source is none"):
        run_experiment(cfg, tmp_path / "out", log=lambda *_: None)
    assert not (tmp_path / "out").exists()
