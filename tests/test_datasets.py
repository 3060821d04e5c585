"""The paper's data sets on fixtures in their real on-disk formats: ImageNet-100 (ILSVRC2012 folders),
CORe50 (128x128 PNG release) and MedMNIST (npz). Each loader runs a full tiny experiment on the CPU,
and each missing or malformed input stops the run before training with a clear error and no
metrics.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from braincl import config
from braincl.data.base import DataError
from braincl.data.imagefolder import file_sha256, read_class_list
from braincl.data.imagenet100 import CLASS_LIST_DIR
from braincl.runner import run_experiment

from fixtures_data import write_core50, write_devkit, write_imagenet_tree, write_loc_solution, write_medmnist

TINY = {
    "model.backbone": "resnet18_slim", "model.params.width": 4, "model.params.stem": "small",
    "train.epochs": 1, "train.batch_size": 8, "train.threads": 1, "train.progress": False,
    "method.name": "finetune", "scenario.initial_classes": 2, "scenario.increment": 2, "scenario.num_tasks": 2,
}
CROP32 = "[{name: RandomResizedCrop, size: 32, antialias: true}, {name: RandomHorizontalFlip}]"


def load(**items):
    return config.load(None, [f"{k}={v}" for k, v in {**TINY, **items}.items()])


def run(out, **items):
    return run_experiment(load(**items), out, log=lambda *_: None)


def fails_cleanly(out, match, **items):
    """The run raises DataError matching ``match`` and leaves no metrics.json behind."""
    with pytest.raises(DataError, match=match) as err:
        run(out, **items)
    assert not (out / "metrics.json").exists()
    return str(err.value)


# ------------------------------------------------------------------ ImageNet-100
PODNET = read_class_list(CLASS_LIST_DIR / "imagenet100_podnet.txt")


def imagenet(root, **extra):
    return {"dataset.name": "imagenet100", "dataset.root": str(root), "dataset.params.resolution": 32,
            "dataset.transforms.train": CROP32, **extra}


def test_shipped_class_lists_are_imagenet1k_subsets_and_seed1993_is_derived():
    from braincl.data.imagenet100 import IMAGENET1K_WNIDS, derive_seed1993

    all_wnids = read_class_list(IMAGENET1K_WNIDS)
    assert len(all_wnids) == 1000 and all_wnids == sorted(all_wnids)
    for name in ("imagenet100_podnet.txt", "imagenet100_seed1993.txt"):
        wnids = read_class_list(CLASS_LIST_DIR / name)
        assert len(wnids) == 100 and set(wnids) <= set(all_wnids)
    # seed1993: the first 100 of a np.random.seed(1993) permutation of the sorted 1,000 wnids
    np.random.seed(1993)
    order = np.random.permutation(1000)
    assert read_class_list(CLASS_LIST_DIR / "imagenet100_seed1993.txt") == [all_wnids[i] for i in order[:100]]
    assert derive_seed1993(all_wnids) == [all_wnids[i] for i in order[:100]]
    assert PODNET == all_wnids[:100]  # PODNet's split: ImageNet-1k indices 0..99, in label order


def test_imagenet100_runs_end_to_end_with_the_podnet_list(tmp_path):
    write_imagenet_tree(tmp_path / "imnet", PODNET, n_train=4, n_val=2)
    record = run(tmp_path / "out", **imagenet(tmp_path / "imnet"))
    info = record["scenario"]["dataset_info"]
    assert info["class_list_name"] == "podnet"
    assert info["class_list_sha256"] == file_sha256(info["class_list"])
    assert record["scenario"]["class_names"][:4] == [PODNET[c] for c in record["scenario"]["class_order"][:4]]
    assert record["accuracy"]["test_samples_per_task"] == [4, 4]  # 2 classes x 2 val images
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["run"]["dataset"] == "imagenet100"


def test_imagenet100_custom_class_list_and_train_cap(tmp_path):
    wnids = ["n01440764", "n01443537", "n01484850"]
    write_imagenet_tree(tmp_path / "imnet", wnids, n_train=5, n_val=1)
    (tmp_path / "list.txt").write_text("\n".join(reversed(wnids)) + "\n")
    cfg = load(**imagenet(tmp_path / "imnet", **{"dataset.params.class_list": str(tmp_path / "list.txt"),
                                                 "dataset.params.max_train_per_class": 2}))
    from braincl.runner import build_data

    splits = build_data(cfg)
    assert splits.class_names == list(reversed(wnids))  # the list orders the classes
    # the cap keeps 2 per class; the validation split then takes ceil(0.1 * 2) = 1 of them
    assert np.bincount(splits.train.targets).tolist() == [1, 1, 1]
    assert np.bincount(splits.val.targets).tolist() == [1, 1, 1]
    assert splits.info["class_list_name"] == "file"
    assert splits.test.read(0).shape == (3, 32, 32) and splits.train.read_train(0).shape == (3, 40, 48)


def test_imagenet100_missing_root_names_layout_source_and_key(tmp_path):
    msg = fails_cleanly(tmp_path / "out", "dataset.root", **{"dataset.name": "imagenet100"})
    assert "train/<wnid>" in msg and "image-net.org" in msg
    msg = fails_cleanly(tmp_path / "out", "not found", **imagenet(tmp_path / "nowhere"))
    assert "dataset.root" in msg and "val/<wnid>" in msg


def test_imagenet100_class_list_naming_absent_folders(tmp_path):
    write_imagenet_tree(tmp_path / "imnet", ["n01440764", "n01443537"])
    (tmp_path / "list.txt").write_text("n01440764\nn09999999\n")
    msg = fails_cleanly(tmp_path / "out", "absent", **imagenet(tmp_path / "imnet", **{
        "dataset.params.class_list": str(tmp_path / "list.txt")}))
    assert str(tmp_path / "list.txt") in msg and "n09999999" in msg
    fails_cleanly(tmp_path / "out", "neither a shipped list", **imagenet(tmp_path / "imnet", **{
        "dataset.params.class_list": "podnett"}))


def test_imagenet100_broken_image_is_named_before_training(tmp_path):
    wnids = ["n01440764", "n01443537", "n01484850", "n01491361"]
    write_imagenet_tree(tmp_path / "imnet", wnids)
    (tmp_path / "list.txt").write_text("\n".join(wnids) + "\n")
    broken = tmp_path / "imnet" / "train" / wnids[3] / "broken.JPEG"
    broken.write_bytes(b"this is not a jpeg")
    fails_cleanly(tmp_path / "out", "broken.JPEG", **imagenet(tmp_path / "imnet", **{
        "dataset.params.class_list": str(tmp_path / "list.txt")}))


def test_flat_val_is_detected_and_sort_val_fixes_it_from_loc_solution(tmp_path):
    from braincl.data.imagenet100 import main

    wnids = ["n01440764", "n01443537", "n01484850", "n01491361"]
    truth = write_imagenet_tree(tmp_path / "imnet", wnids, flat_val=True)
    (tmp_path / "list.txt").write_text("\n".join(wnids) + "\n")
    items = imagenet(tmp_path / "imnet", **{"dataset.params.class_list": str(tmp_path / "list.txt")})
    assert "sort-val" in fails_cleanly(tmp_path / "out", "flat", **items)
    solution = write_loc_solution(tmp_path / "LOC_val_solution.csv", truth)
    assert main(["sort-val", "--val", str(tmp_path / "imnet" / "val"), "--solution", str(solution)]) == 0
    for image_id, wnid in truth.items():
        assert (tmp_path / "imnet" / "val" / wnid / f"{image_id}.JPEG").is_file()
    assert run(tmp_path / "out", **items)["accuracy"]["test_samples_per_task"] == [4, 4]


def test_sort_val_from_devkit_ground_truth(tmp_path):
    from braincl.data.imagenet100 import val_labels_from_devkit

    wnids = ["n01440764", "n01443537", "n01484850"]
    truth = write_imagenet_tree(tmp_path / "imnet", wnids, flat_val=True)
    devkit = write_devkit(tmp_path / "ILSVRC2012_devkit_t12", truth, wnids)
    assert val_labels_from_devkit(devkit) == truth
    (devkit / "data" / "meta.mat").unlink()
    with pytest.raises(DataError, match="meta.mat"):
        val_labels_from_devkit(devkit)


# ------------------------------------------------------------------ CORe50
def core50(root, **extra):
    return {"dataset.name": "core50", "dataset.root": str(root), "dataset.params.resolution": 32,
            "dataset.params.objects": "[1, 2, 6, 7]", "dataset.params.train_sessions": "[1, 2]",
            "dataset.params.test_sessions": "[3]",
            "dataset.transforms.train": "[{name: RandomCrop, size: 32, padding: 4}]", **extra}


def test_core50_object_level_runs_end_to_end(tmp_path):
    write_core50(tmp_path, sessions=[1, 2, 3], objects=[1, 2, 6, 7], frames=3)
    record = run(tmp_path / "out", **core50(tmp_path))  # root holds core50_128x128/
    info = record["scenario"]["dataset_info"]
    assert info["train_images"] == 4 * 2 * 3 and info["test_images"] == 4 * 3
    assert sorted(record["scenario"]["class_names"]) == sorted(["plug_adapter1", "plug_adapter2",
                                                                "mobile_phone1", "mobile_phone2"])
    assert record["accuracy"]["test_samples_per_task"] == [6, 6]


def test_core50_category_level_groups_objects_by_five(tmp_path):
    from braincl.runner import build_data

    release = write_core50(tmp_path, sessions=[1, 3], objects=[1, 2, 6, 7], frames=2)
    splits = build_data(load(**core50(release, **{"dataset.params.level": "category",
                                                  "dataset.params.train_sessions": "[1]"})))
    assert splits.class_names == ["plug_adapter", "mobile_phone"]
    files = [p for p, _ in splits.train.samples]
    labels = {f.split("/")[-2]: int(t) for f, t in zip(files, splits.train.targets)}
    assert labels == {"o1": 0, "o2": 0, "o6": 1, "o7": 1}
    assert splits.train.read(0).shape == (3, 32, 32)


def test_core50_default_sessions_and_missing_data(tmp_path):
    msg = fails_cleanly(tmp_path / "out", "dataset.root", **{"dataset.name": "core50"})
    assert "core50_128x128/s{1..11}" in msg and "vlomonaco.github.io/core50" in msg
    fails_cleanly(tmp_path / "out", "CORe50 not found", **core50(tmp_path / "nowhere"))
    # the standard split asks for sessions 1..11: a fixture with three sessions lacks s4
    write_core50(tmp_path, sessions=[1, 2, 3], objects=[1, 2], frames=1)
    msg = fails_cleanly(tmp_path / "out", "folder missing", **core50(tmp_path, **{
        "dataset.params.train_sessions": "null", "dataset.params.test_sessions": "null",
        "dataset.params.objects": "[1, 2]"}))
    assert "s4" in msg


def test_core50_broken_png_is_named(tmp_path):
    release = write_core50(tmp_path, sessions=[1, 2, 3], objects=[1, 2, 6, 7], frames=2)
    bad = release / "s3" / "o6" / "C_03_06_001.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    fails_cleanly(tmp_path / "out", "C_03_06_001.png", **core50(tmp_path))


# ------------------------------------------------------------------ MedMNIST
def medmnist_items(root, flag, size=28, **extra):
    return {"dataset.name": "medmnist", "dataset.root": str(root), "dataset.params.flag": flag,
            "dataset.params.size": size, **extra}


@pytest.mark.parametrize("flag,size,channels", [("bloodmnist", 28, 3), ("organamnist", 64, 1)])
def test_medmnist_runs_end_to_end_with_official_splits(tmp_path, flag, size, channels):
    write_medmnist(tmp_path / "med", flag, size, per_class={"train": 4, "val": 1, "test": 2})
    record = run(tmp_path / "out", **medmnist_items(tmp_path / "med", flag, size))
    info = record["scenario"]["dataset_info"]
    from medmnist import INFO

    n_classes = len(INFO[flag]["label"])
    assert info["samples"] == {"train": 4 * n_classes, "val": n_classes, "test": 2 * n_classes}
    assert record["accuracy"]["test_samples_per_task"] == [4, 4]
    from braincl.runner import build_data

    splits = build_data(load(**medmnist_items(tmp_path / "med", flag, size)))
    assert (splits.train.channels, splits.train.size) == (channels, (size, size))
    assert splits.val is not None and len(splits.val) == n_classes


def test_medmnist_rejects_multilabel_unknown_and_3d_flags(tmp_path):
    assert "multi-label" in fails_cleanly(tmp_path / "out", "chestmnist", **medmnist_items(tmp_path, "chestmnist"))
    fails_cleanly(tmp_path / "out", "unknown MedMNIST flag", **medmnist_items(tmp_path, "bloodmnst"))
    fails_cleanly(tmp_path / "out", "3D", **medmnist_items(tmp_path, "organmnist3d"))
    fails_cleanly(tmp_path / "out", "size must be", **medmnist_items(tmp_path, "bloodmnist", 32))


def test_medmnist_missing_and_malformed_files(tmp_path):
    msg = fails_cleanly(tmp_path / "out", "not found", **medmnist_items(tmp_path / "med", "bloodmnist", 64))
    assert "bloodmnist_64.npz" in msg and "zenodo" in msg and "download" in msg
    msg = fails_cleanly(tmp_path / "out", "dataset.root", **{"dataset.name": "medmnist",
                                                              "dataset.params.flag": "bloodmnist"})
    path = write_medmnist(tmp_path / "med", "bloodmnist", drop_keys=("val_labels", "test_images"))
    msg = fails_cleanly(tmp_path / "out", "lacks the key", **medmnist_items(tmp_path / "med", "bloodmnist"))
    assert str(path) in msg and "val_labels" in msg and "test_images" in msg
    path.write_bytes(b"not a zip file")
    assert str(path) in fails_cleanly(tmp_path / "out", "cannot read", **medmnist_items(tmp_path / "med", "bloodmnist"))
    # RGB images where the flag (OrganAMNIST) is grey: the shape check names the file
    rgb = write_medmnist(tmp_path / "rgb", "bloodmnist")
    with np.load(rgb) as data:
        np.savez(tmp_path / "med" / "organamnist.npz", **dict(data))
    msg = fails_cleanly(tmp_path / "out", "train_images has", **medmnist_items(tmp_path / "med", "organamnist"))
    assert "organamnist.npz" in msg
    # labels outside the flag's classes
    with np.load(rgb) as data:
        arrays = dict(data)
    arrays["test_labels"][0, 0] = 8
    np.savez(tmp_path / "med" / "bloodmnist.npz", **arrays)
    fails_cleanly(tmp_path / "out", "outside 0..7", **medmnist_items(tmp_path / "med", "bloodmnist"))


def test_medmnist_download_is_handed_to_the_medmnist_package(tmp_path, monkeypatch):
    import medmnist

    calls = []

    class FakeBloodMNIST:  # stands in for the network: records the call, writes the file it would fetch
        def __init__(self, split, download, root, size):
            calls.append((split, download, root, size))
            write_medmnist(tmp_path / "med", "bloodmnist", size, per_class={"train": 2, "val": 1, "test": 1})

    monkeypatch.setattr(medmnist, "BloodMNIST", FakeBloodMNIST)
    from braincl.runner import build_data

    splits = build_data(load(**medmnist_items(tmp_path / "med", "bloodmnist", 28, **{"dataset.params.download": True})))
    assert calls == [("train", True, str(tmp_path / "med"), 28)]
    assert len(splits.train) == 16


def test_cli_reports_data_errors_without_a_traceback(tmp_path, capsys):
    from braincl.cli import main

    cfg = tmp_path / "exp.yaml"
    cfg.write_text("dataset: {name: medmnist, params: {flag: chestmnist}, root: /nonexistent}\n"
                   "method: {name: finetune}\n")
    assert main(["run", str(cfg), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "multi-label" in capsys.readouterr().err
    assert not (tmp_path / "out" / "metrics.json").exists()


# ------------------------------------------------------------------ shipped experiment configs
CONFIG_DIR = Path(__file__).resolve().parents[1] / "config" / "experiments"
EXPERIMENTS = sorted(p for pattern in ("imagenet100_*.yaml", "core50_*.yaml", "medmnist_*.yaml")
                     for p in CONFIG_DIR.glob(pattern))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_experiment_configs_validate_and_build_their_protocols(path):
    from braincl.data.transforms import check_transforms
    from braincl.protocols import build_protocols

    cfg = config.load(path)
    check_transforms(cfg)
    build_protocols(cfg)
    params = cfg["dataset"]["params"]
    if "resolution" in params:  # the training crop must produce the stored (evaluation) size
        crops = [t["size"] for t in cfg["dataset"]["transforms"]["train"] if "size" in t]
        assert crops and all(c == params["resolution"] for c in crops), (crops, params["resolution"])


def test_cpu_scale_medmnist_config_runs_on_a_fixture(tmp_path):
    path = next(p for p in EXPERIMENTS if p.name == "medmnist_blood_cpu.yaml")
    write_medmnist(tmp_path / "med", "bloodmnist", 28, per_class={"train": 4, "val": 1, "test": 2})
    cfg = config.load(path, [f"dataset.root={tmp_path / 'med'}", "train.epochs=1", "train.progress=false",
                             "scenario.num_tasks=2"])
    record = run_experiment(cfg, tmp_path / "out", log=lambda *_: None)
    assert record["run"]["dataset"] == "bloodmnist" and record["run"]["dataset_loader"] == "medmnist" and record["memory"]["final"]["charged_bytes"] > 0
