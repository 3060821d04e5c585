"""Your own data, end to end: an ImageFolder tree in each common layout, defaults that follow the
images (normalisation, augmentation, backbone width and stem, BrainCL's codec), all recorded in the
run, and ``braincl validate`` refusing what ``run`` would refuse (crop/resolution mismatches, broken
images) before any training. The example of docs/own_data.md is run as written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from braincl import config
from braincl.cli import main as cli
from braincl.data.base import DataError
from braincl.runner import build_data, preflight, run_experiment
from braincl.sizing import CODEC_SHARE, N_LADDER, codec_depth, codec_fixed_nbytes, size_codec

from fixtures_data import write_image_folder

CLASSES = ["cat", "dog", "fox", "owl"]
FAST = {"train.threads": 1, "train.progress": False, "train.epochs": 2, "eval.spectrum": False}
DOC = Path(__file__).resolve().parents[1] / "docs" / "own_data.md"


def own(root, **items):
    base = {"dataset.name": "imagefolder", "dataset.root": str(root), "method.name": "er", "memory.budget": "200KB",
            "scenario.initial_classes": 2, "scenario.increment": 2, **FAST}
    return config.load(None, [f"{k}={v}" for k, v in {**base, **items}.items()])


@pytest.fixture
def tree32(tmp_path):
    return write_image_folder(tmp_path / "mine", CLASSES, {"train": 16, "test": 4}, size=(32, 32))


# ------------------------------------------------------------------ layouts
def test_train_and_test_folders(tree32):
    splits = build_data(own(tree32))
    assert splits.info["layout"] == "train/ + test/"
    assert splits.class_names == CLASSES and len(splits.test) == 16
    assert splits.info["validation"]["source"] == "train" and len(splits.val) == 8  # ceil(0.1 * 16) per class


def test_train_and_val_folders_use_val_as_the_test_set(tmp_path):
    root = write_image_folder(tmp_path / "mine", CLASSES, {"train": 6, "val": 3})
    splits = build_data(own(root))
    assert splits.info["layout"].startswith("train/ + val/") and len(splits.test) == 12
    assert splits.info["validation"]["source"] == "train"


def test_train_test_and_val_folders_keep_val_as_the_validation_split(tmp_path):
    root = write_image_folder(tmp_path / "mine", CLASSES, {"train": 6, "test": 2, "val": 3})
    splits = build_data(own(root))
    assert splits.info["validation"]["source"] == "official" and len(splits.val) == 12 and len(splits.train) == 24


def test_one_folder_of_class_folders_is_split_by_a_seeded_fraction(tmp_path):
    root = write_image_folder(tmp_path / "mine", CLASSES, {".": 10})
    splits = build_data(own(root))
    assert splits.info["layout"] == "one folder of class folders" and splits.info["test_fraction"] == 0.2
    assert np.bincount(splits.test.targets).tolist() == [2] * 4
    again = build_data(own(root))
    assert [p for p, _ in splits.test.samples] == [p for p, _ in again.test.samples]
    other = build_data(own(root, **{"dataset.params.split_seed": 1}))
    assert [p for p, _ in splits.test.samples] != [p for p, _ in other.test.samples]


def test_other_layouts_name_the_setting_to_change(tmp_path):
    root = write_image_folder(tmp_path / "a", CLASSES[:2], {"training": 3, "testing": 2})
    with pytest.raises(DataError, match="dataset.params.train_dir and dataset.params.test_dir"):
        build_data(own(root))
    splits = build_data(own(root, **{"dataset.params.train_dir": "training", "dataset.params.test_dir": "testing"}))
    assert len(splits.test) == 4
    only_train = write_image_folder(tmp_path / "b", CLASSES[:2], {"train": 3})
    with pytest.raises(DataError, match="dataset.params.test_dir"):
        build_data(own(only_train))
    with pytest.raises(DataError, match="dataset.root"):
        build_data(own(tmp_path / "nowhere"))


# ------------------------------------------------------------------ defaults that follow the images
def test_small_images_get_no_augmentation_a_narrow_backbone_and_data_statistics(tree32):
    run = preflight(own(tree32))
    cfg, derived = run.cfg, run.splits.info["derived"]
    assert cfg["dataset"]["transforms"]["train"] == [] and derived["train_view"].startswith("stored view")
    assert cfg["model"]["params"]["width"] == 16 and derived["stem"] == "small"
    norm = cfg["dataset"]["transforms"]["normalize"]
    pixels = run.splits.train.read_many(np.arange(len(run.splits.train))).float() / 255
    assert np.allclose(norm["mean"], pixels.mean(dim=(0, 2, 3)).numpy(), atol=1e-4)
    assert np.allclose(norm["std"], pixels.std(dim=(0, 2, 3)).numpy(), atol=1e-3)
    assert run.splits.train.size == (32, 32)  # resolution: the images' own size


def test_larger_images_get_crops_and_flips_from_the_full_file_and_a_wider_backbone(tmp_path):
    root = write_image_folder(tmp_path / "mine", CLASSES[:2], {"train": 3, "test": 1}, size=(72, 96))
    run = preflight(own(root, **{"method.name": "finetune", "memory.budget": "null"}))
    train = run.cfg["dataset"]["transforms"]["train"]
    assert [t["name"] for t in train] == ["RandomResizedCrop", "RandomHorizontalFlip"] and train[0]["size"] == 72
    assert run.splits.train.size == (72, 72) and run.splits.train.read_train(0).shape == (3, 72, 96)
    assert run.cfg["model"]["params"]["width"] == 32 and run.splits.info["derived"]["stem"] == "imagenet"


def test_validate_refuses_a_crop_that_does_not_match_the_stored_size(tree32, tmp_path, capsys):
    with pytest.raises(config.ConfigError, match="stores images at 3x32x32"):
        preflight(own(tree32, **{"dataset.transforms.train": "[{name: RandomResizedCrop, size: 64}]"}))
    exp = tmp_path / "exp.yaml"  # any data set: MNIST 5k with a 32 px crop of 28 px digits
    exp.write_text("method: {name: finetune}\ndataset:\n  transforms:\n    train: [{name: RandomCrop, size: 32}]\n")
    assert cli(["validate", str(exp)]) == 2
    assert "dataset.transforms.train" in capsys.readouterr().err


def test_validate_names_a_broken_image_before_training(tree32, tmp_path, capsys):
    (tree32 / "test" / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"dataset: {{name: imagefolder, root: {tree32}}}\nmethod: {{name: er}}\nmemory: {{budget: 200KB}}\n")
    assert cli(["validate", str(exp)]) == 2
    assert "broken.png" in capsys.readouterr().err
    assert cli(["validate", str(exp), "--set", "dataset.params.verify=none"]) == 0  # unchecked: found only when read


# ------------------------------------------------------------------ BrainCL's codec, sized by rule
def test_codec_depth_keeps_the_latent_at_least_4x4():
    assert [codec_depth((s, s)) for s in (8, 16, 28, 32, 64, 128, 224)] == [1, 2, 3, 3, 4, 4, 4]
    for side in (8, 16, 28, 32, 64, 224):
        assert -(-side // 2 ** codec_depth((side, side))) >= 4


@pytest.mark.parametrize("budget", [50_000, 200_000, 2_000_000])
def test_codec_channels_keep_decoders_and_tables_within_the_stated_share(budget):
    rule = size_codec((3, 32, 32), budget, num_tasks=5)
    i = N_LADDER.index(rule["N"])
    if i > 0:
        assert rule["fixed_bytes"] <= CODEC_SHARE * budget
    else:  # not even the smallest codec fits the share: it is used, and BrainCL's own check decides
        assert budget == 50_000 and rule["fixed_bytes"] > CODEC_SHARE * budget
    if i + 1 < len(N_LADDER):  # the next codec on the ladder would not fit
        N = N_LADDER[i + 1]
        assert codec_fixed_nbytes(3, N, max(4, N // 2), rule["depth"], 5, "fp16", "per_task",
                                  rule["max_cdf_length"]) > CODEC_SHARE * budget


def test_braincl_and_er_run_on_a_32px_folder_with_no_codec_parameters(tree32, tmp_path):
    budget, schedule = 200_000, {"train.epochs": 5, "train.batch_size": 8}  # 20 steps per task
    record = run_experiment(own(tree32, **{"method.name": "braincl", "memory.budget": budget, **schedule}),
                            tmp_path / "braincl", log=lambda *_: None)
    params = record["config"]["method"]["params"]
    sized = record["scenario"]["dataset_info"]["derived"]["method_params"]
    assert params["depth"] == 3 and params["M"] == params["N"] // 2 and params["N"] == sized["N"]
    assert record["method_info"]["ablations"]["N"] == params["N"]
    final = record["memory"]["final"]["bytes"]
    assert final["decoders"] + final["entropy_tables"] <= CODEC_SHARE * budget
    assert final["cues"] > 0 and record["memory"]["final"]["charged_bytes"] <= budget
    er = run_experiment(own(tree32, **schedule), tmp_path / "er", log=lambda *_: None)
    for rec in (record, er):
        assert rec["splits"] == {"accuracy": "test", "protocols": "test",
                                 "validation": rec["scenario"]["dataset_info"]["validation"]}
        assert rec["config"]["dataset"]["transforms"]["normalize"]["mean"] != "auto"
    assert er["accuracy"]["tag"][0][0] >= 0.75  # two colour-coded classes (chance 0.5): the task is learned


def test_explicit_codec_params_win_over_the_rule(tree32):
    run = preflight(own(tree32, **{"method.name": "braincl", "method.params.N": 8, "method.params.codec_lr": 1e-3}))
    params = run.cfg["method"]["params"]
    assert params["N"] == 8 and params["codec_lr"] == 1e-3
    assert params["M"] is not None and params["depth"] == 3
    filled = run.splits.info["derived"]["method_params"]["filled"]
    assert "N" not in filled and "codec_lr" not in filled and "M" in filled
    # a data set with a tuned block keeps it: MNIST 5k's codec is the rate-distortion sweep's
    mnist = config.load(None, ["method.name=braincl", "memory.budget=300KB"])
    assert (mnist["method"]["params"]["N"], mnist["method"]["params"]["depth"]) == (16, 2)


# ------------------------------------------------------------------ the documented example
def test_the_example_in_docs_own_data_runs_as_written(tmp_path):
    text = DOC.read_text()
    block = re.search(r"<!-- example: (\S+) -->\s*```yaml\n(.*?)```", text, re.S)
    assert block, "docs/own_data.md lost its tested example"
    exp = yaml.safe_load(block.group(2))
    root = write_image_folder(tmp_path / "my_images", CLASSES, {"train": 12, "test": 4})
    exp["dataset"]["root"] = str(root)
    path = tmp_path / block.group(1)
    path.write_text(yaml.safe_dump(exp))
    overrides = ["--set", "train.epochs=1", "--set", "train.threads=1"]  # the example, shortened for the test
    assert cli(["validate", str(path), *overrides]) == 0
    assert cli(["run", str(path), "--out", str(tmp_path / "out"), "--quiet", *overrides]) == 0
    assert (tmp_path / "out" / "metrics.json").is_file()
