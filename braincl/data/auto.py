"""Defaults that follow the images, for data sets whose images the suite does not know (your own
image folder). A config asks for them with ``auto`` (or ``null``) values; the run resolves them
once the data is read and records every choice under ``scenario.dataset_info.derived``:

- ``dataset.transforms.normalize: auto``: per-channel mean and std of up to ``STAT_IMAGES`` training
  images (seeded draw); ``none``: pixels in [0, 1] (mean 0, std 1).
- ``dataset.transforms.train: auto``: no augmentation below ``SMALL`` px (small images: a crop or
  flip changes too much of a digit or an icon); from ``SMALL`` px up, RandomResizedCrop to the
  stored size plus a horizontal flip (the ImageNet convention), taken from the full-size file.
- ``model.params.width: null`` (``resnet18_slim``): 16 below 64 px, 32 below 128 px, 64 (ResNet-18's
  own width) from 128 px. The stem (``stem: auto``) follows the same 64 px threshold: the small-image
  stem below, the ImageNet stem from 64 px.

A source that decodes full-size files for training (``FolderSource``) reads its stored view (the
evaluation resize and crop) instead when the training pipeline has no transform that sets a size,
so that every training batch has the stored shape. ``check_image_shapes`` then runs both pipelines
on one image and refuses a crop that does not match the stored size, for any config."""

from __future__ import annotations

import copy

import numpy as np
import torch

SMALL = 64            # px: the stem threshold of braincl.models.backbones (auto stem) and of augmentation
STAT_IMAGES = 1000    # training images the normalisation statistics are computed from
WIDTHS = ((64, 16), (128, 32))  # (below this many px, width); from 128 px: 64


def root_source(source):
    """The source that holds the files (a carved validation split wraps its training source)."""
    while hasattr(source, "parent_indices"):
        source = source.parent
    return source


def normalization_from_images(source, limit: int = STAT_IMAGES, seed: int = 0) -> dict:
    """Per-channel mean and std (of pixels in [0, 1]) over up to ``limit`` images, rounded to 4 digits."""
    n = len(source)
    idx = np.sort(np.random.default_rng(seed).permutation(n)[: min(n, limit)])
    images = source.read_many(idx).float().div_(255.0)  # N, C, H, W
    mean = images.mean(dim=(0, 2, 3))
    std = images.std(dim=(0, 2, 3))
    std = torch.where(std > 1e-6, std, torch.ones_like(std))  # a constant channel stays as it is
    return {"mean": [round(float(m), 4) for m in mean], "std": [round(float(s), 4) for s in std]}


def default_width(side: int) -> int:
    for below, width in WIDTHS:
        if side < below:
            return width
    return 64


def default_train_transforms(side: int) -> list[dict]:
    if side < SMALL:
        return []
    return [{"name": "RandomResizedCrop", "size": side, "antialias": True}, {"name": "RandomHorizontalFlip"}]


def _sets_size(specs: list[dict]) -> bool:
    return any("size" in spec for spec in specs or [])


def adapt_to_images(cfg: dict, splits) -> tuple[dict, dict]:
    """The config with its ``auto`` data defaults resolved from ``splits``, and what was chosen."""
    cfg = copy.deepcopy(cfg)
    tcfg = cfg["dataset"]["transforms"]
    side = int(min(splits.train.size))
    derived: dict = {"image_shape": [int(splits.train.channels), *map(int, splits.train.size)]}
    norm = tcfg.get("normalize")
    if norm == "auto":
        tcfg["normalize"] = normalization_from_images(splits.train)
        derived["normalize"] = {"rule": f"mean/std of up to {STAT_IMAGES} training images", **tcfg["normalize"]}
    elif norm == "none" or norm is None:
        tcfg["normalize"] = {"mean": [0.0], "std": [1.0]}
        derived["normalize"] = {"rule": "none: pixels in [0, 1]"}
    if tcfg.get("train") == "auto":
        tcfg["train"] = default_train_transforms(side)
        derived["train_transforms"] = {"rule": f"none below {SMALL} px, RandomResizedCrop + flip from {SMALL} px",
                                       "chosen": tcfg["train"]}
    if tcfg.get("eval") == "auto":
        tcfg["eval"] = []
    model = cfg["model"]
    params = model.setdefault("params", {})
    if model["backbone"] == "resnet18_slim" and "width" in params and params["width"] is None:
        params["width"] = default_width(side)
        derived["width"] = {"rule": "16 below 64 px, 32 below 128 px, 64 from 128 px", "chosen": params["width"]}
    if params.get("stem") == "auto":
        derived["stem"] = "imagenet" if side >= SMALL else "small"
    root = root_source(splits.train)
    if hasattr(root, "train_full_size"):
        root.train_full_size = _sets_size(tcfg.get("train"))
        derived["train_view"] = "full-size file" if root.train_full_size else "stored view (no sized transform)"
    return cfg, derived


def check_image_shapes(splits, train_tf, eval_tf) -> None:
    """Run the training and evaluation pipelines on the first training image: each must give the
    stored shape, or batches would not stack (or the model would see another size than it stores)."""
    if len(splits.train) == 0:
        return
    want = (splits.train.channels, *splits.train.size)
    for key, tf, image in (("train", train_tf, splits.train.read_train(0)), ("eval", eval_tf, splits.train.read(0))):
        with torch.random.fork_rng(devices=[]):  # the probe must not move the run's random stream
            try:
                got = tuple(tf(image).shape)
            except (ValueError, TypeError, RuntimeError) as err:
                raise ValueError(f"dataset.transforms.{key} fails on a {'x'.join(map(str, image.shape))} image of "
                                 f"this data set (stored at {'x'.join(map(str, want))}): {err}") from None
        if got != want:
            raise ValueError(
                f"dataset.transforms.{key} turns a {'x'.join(map(str, image.shape))} image into "
                f"{'x'.join(map(str, got))}, but this data set stores images at {'x'.join(map(str, want))} "
                f"(dataset.params.resolution where the data set has one): set the crop size in "
                f"dataset.transforms.{key} to {want[-1]}, or the resolution to the crop size")
