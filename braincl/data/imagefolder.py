"""``imagefolder``: your own images in torchvision's ImageFolder layout, ``<split>/<class>/<image>``.

Layouts (``dataset.root``), found in this order:

- ``root/train/`` and ``root/test/``: the test set is ``test/``; a ``root/val/`` beside them is the
  validation split (``dataset.validation.source: auto`` uses it).
- ``root/train/`` and ``root/val/``: ``val/`` is the test set (the ImageNet convention); the
  validation split is carved from ``train/``.
- ``root/<class>/<image>``: one folder of class folders; a seeded ``test_fraction`` of each class
  (``split_seed``) is the test set.

``train_dir`` / ``test_dir`` / ``val_dir`` name other folders. An optional class-list file (one
folder name per line) restricts and orders the classes; the ImageNet-100 loader builds on this.
Images are stored at ``resolution`` px (null: the median shorter side of the training images, at
most 224) after a resize of the shorter side to ``resolution * resize_ratio`` and a center crop;
training crops come from the full-size file (see ``braincl.data.auto`` for when they do not).
``verify: header`` opens every image before training, so that ``braincl validate`` names a
broken file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from ..registry import DATASETS
from .base import DataError, ImageSource, SplitSources


def read_class_list(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"class list not found: {path}")
    names = [line.strip().split()[0] for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    if not names:
        raise DataError(f"class list {path} is empty")
    if len(set(names)) != len(names):
        raise DataError(f"class list {path} names a class twice")
    return names


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class FolderSource(ImageSource):
    """Images listed as (path, label) pairs, decoded with Pillow on demand."""

    def __init__(self, samples: list[tuple[str, int]], resolution: int, channels: int = 3, resize_ratio: float = 256 / 224):
        from torchvision.transforms import v2

        self.samples = samples
        self.targets = np.asarray([label for _, label in samples], dtype=np.int64)
        self.channels = channels
        self.size = (resolution, resolution)
        self.train_full_size = True  # read_train decodes the full file (for a training crop); False: stored view
        self._store = v2.Compose([
            v2.Resize(int(round(resolution * resize_ratio)), antialias=True),
            v2.CenterCrop(resolution),
        ])

    def _decode(self, index: int) -> torch.Tensor:
        from PIL import Image, UnidentifiedImageError
        from torchvision.transforms.functional import pil_to_tensor

        path = self.samples[index][0]
        try:
            with Image.open(path) as img:
                img = img.convert("RGB" if self.channels == 3 else "L")
                return pil_to_tensor(img)
        except (OSError, UnidentifiedImageError, SyntaxError) as err:
            raise DataError(f"cannot read image {path}: {err}. Replace or delete the file.") from None

    def read(self, index: int) -> torch.Tensor:
        return self._store(self._decode(index))

    def read_train(self, index: int) -> torch.Tensor:
        return self._decode(index) if self.train_full_size else self.read(index)


def scan_folder(split_dir: Path, classes: list[str] | None) -> tuple[list[tuple[str, int]], list[str]]:
    """Index ``split_dir`` with torchvision's ImageFolder rules (valid extensions, sorted walk)."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

    if not split_dir.is_dir():
        raise DataError(f"folder not found: {split_dir}")
    present = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if classes is None:
        classes = present
    missing = [c for c in classes if c not in present]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise DataError(f"{len(missing)} class folder(s) named in the class list are absent from {split_dir}: {shown}")
    if not classes:
        raise DataError(f"{split_dir} holds no class folders (expected {split_dir}/<class>/<image>)")
    class_to_idx = {c: i for i, c in enumerate(classes)}
    try:
        samples = make_dataset(str(split_dir), class_to_idx, extensions=IMG_EXTENSIONS)
    except FileNotFoundError as err:
        raise DataError(f"{split_dir}: {err}") from None
    return samples, classes


def build_folder_splits(root: Path, params: dict, name: str, how_to_get: str) -> SplitSources:
    """ImageNet-style trees: ``root/<train_dir>`` and ``root/<test_dir>`` (default ``train``, ``val``)."""
    if root is None:
        raise DataError(f"data set {name!r} needs dataset.root. {how_to_get}")
    root = Path(root).expanduser()
    train_dir, test_dir = root / (params.get("train_dir") or "train"), root / (params.get("test_dir") or "val")
    if not train_dir.is_dir() or not test_dir.is_dir():
        raise DataError(
            f"data set {name!r} not found at {root}: expected {train_dir}/<class>/<image> and "
            f"{test_dir}/<class>/<image>. {how_to_get} Set dataset.root to the folder that holds "
            f"{train_dir.name}/ and {test_dir.name}/.")
    class_list = params.get("class_list")
    classes = read_class_list(class_list) if class_list else None
    train_samples, classes = scan_folder(train_dir, classes)
    test_samples, _ = scan_folder(test_dir, classes)
    resolution = int(params.get("resolution") or 64)
    channels = int(params.get("channels", 3))
    ratio = float(params.get("resize_ratio", 256 / 224))
    info = {"root": str(root), "resolution": resolution}
    if class_list:
        info.update(class_list=str(class_list), class_list_sha256=file_sha256(class_list))
    return SplitSources(
        train=FolderSource(train_samples, resolution, channels, ratio),
        test=FolderSource(test_samples, resolution, channels, ratio),
        class_names=list(classes), info=info)


# ---------------------------------------------------------------------------------------------
# Your own image folder

MAX_AUTO_RESOLUTION = 224  # resolution: null never stores more than ImageNet's 224 px
SIZE_PROBE = 200           # training images whose headers give the automatic resolution


def _subdirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _has_images(folder: Path) -> bool:
    from torchvision.datasets.folder import IMG_EXTENSIONS

    return any(p.is_file() and p.name.lower().endswith(IMG_EXTENSIONS) for p in folder.iterdir())


def find_layout(root: Path, params: dict) -> dict:
    """Which folders hold train, test and validation images: ``{"layout", "train", "test", "val"}``
    (``test`` is None for a single folder that is split by ``test_fraction``). Another layout
    raises a DataError that names the settings to change."""
    named = {k: params.get(k) for k in ("train_dir", "test_dir", "val_dir")}
    if named["train_dir"] or named["test_dir"]:
        train = root / (named["train_dir"] or "train")
        test = root / named["test_dir"] if named["test_dir"] else next(
            (root / d for d in ("test", "val") if (root / d).is_dir()), None)
        for key, folder in (("train_dir", train), ("test_dir", test)):
            if folder is None or not folder.is_dir():
                raise DataError(f"dataset.params.{key}: folder {folder or root / '<test_dir>'} not found under "
                                f"dataset.root {root}; folders there: {', '.join(_subdirs(root)) or '(none)'}")
        val = root / named["val_dir"] if named["val_dir"] else None
        if val is None and test.name != "val" and (root / "val").is_dir():
            val = root / "val"
        if val is not None and not val.is_dir():
            raise DataError(f"dataset.params.val_dir: folder {val} not found under dataset.root {root}")
        return {"layout": "named folders", "train": train, "test": test, "val": val}
    folders = _subdirs(root)
    if "train" in folders and "test" in folders:
        val = root / (named["val_dir"] or "val")
        return {"layout": "train/ + test/" + (" + val/" if val.is_dir() else ""), "train": root / "train",
                "test": root / "test", "val": val if val.is_dir() else None}
    if "train" in folders and "val" in folders:
        return {"layout": "train/ + val/ (val/ is the test set)", "train": root / "train", "test": root / "val",
                "val": None}
    if "train" in folders:
        raise DataError(f"{root} holds train/ but neither test/ nor val/ (folders: {', '.join(folders)}); set "
                        "dataset.params.test_dir to the folder of test images, or put all images in one folder "
                        "of class folders (dataset.root/<class>/<image>) to split them by "
                        "dataset.params.test_fraction")
    if folders and not _has_images(root) and all(_has_images(root / f) for f in folders):
        return {"layout": "one folder of class folders", "train": root, "test": None, "val": None}
    nested = [f for f in folders if _subdirs(root / f)]
    if nested:
        raise DataError(f"{root} holds {', '.join(f + '/' for f in folders)} whose subfolders look like split folders, "
                        "not class folders; set dataset.params.train_dir and dataset.params.test_dir to the "
                        "folders (under dataset.root) that hold the training and test class folders")
    raise DataError(f"{root} holds no class folders: expected {root}/train/<class>/<image> with test/ or val/, "
                    f"or {root}/<class>/<image>; set dataset.root to that folder")


def split_by_fraction(samples: list[tuple[str, int]], fraction: float, seed: int):
    """A seeded, class-stratified test part of ``samples``: ceil(fraction * n) of each class, never
    a class's last image. Returns (train, test)."""
    from .base import validation_counts

    if not 0 < float(fraction) < 1:
        raise DataError(f"dataset.params.test_fraction must lie strictly between 0 and 1, got {fraction!r}")
    labels = np.asarray([label for _, label in samples])
    rng = np.random.default_rng(seed)
    test = set()
    classes, counts = np.unique(labels, return_counts=True)
    for c, k in zip(classes, validation_counts(counts, None, fraction)):
        test.update(rng.permutation(np.flatnonzero(labels == c))[: int(k)].tolist())
    return ([s for i, s in enumerate(samples) if i not in test], [s for i, s in enumerate(samples) if i in test])


def median_short_side(samples: list[tuple[str, int]], seed: int = 0, limit: int = SIZE_PROBE) -> int:
    """Median shorter side over up to ``limit`` image headers (seeded draw)."""
    from PIL import Image

    idx = np.random.default_rng(seed).permutation(len(samples))[:limit]
    sides = []
    for i in idx:
        path = samples[int(i)][0]
        try:
            with Image.open(path) as img:
                sides.append(min(img.size))
        except (OSError, ValueError) as err:
            raise DataError(f"cannot read image {path}: {err}. Replace or delete the file.") from None
    return int(np.median(sides))


@DATASETS.register("imagefolder")
def build_imagefolder(root, params: dict) -> SplitSources:
    from .imagenet100 import verify_images

    if root is None:
        raise DataError("data set 'imagefolder' needs dataset.root: a folder with train/ and test/ (or val/) of "
                        "class folders, or one folder of class folders. Set it in the config (dataset.root: "
                        "/data/my_images) or with --set dataset.root=...")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"dataset.root {root} is not a folder; set dataset.root to the folder of your images")
    layout = find_layout(root, params)
    class_list = params.get("class_list")
    classes = read_class_list(class_list) if class_list else None
    train, classes = scan_folder(layout["train"], classes)
    seed = int(params.get("split_seed", 0))
    if layout["test"] is None:
        train, test = split_by_fraction(train, params.get("test_fraction", 0.2), seed)
    else:
        test, _ = scan_folder(layout["test"], classes)
    val = scan_folder(layout["val"], classes)[0] if layout["val"] is not None else None
    if not train or not test:
        which = "training" if not train else "test"
        raise DataError(f"{root}: the {which} split holds no images (layout: {layout['layout']})")
    verify = str(params.get("verify", "header"))
    for part in (train, test, val or []):
        verify_images(part, verify)
    resolution = params.get("resolution")
    auto_resolution = resolution is None
    if auto_resolution:
        resolution = min(median_short_side(train, seed), MAX_AUTO_RESOLUTION)
    resolution = int(resolution)
    channels = int(params.get("channels", 3))
    ratio = float(params.get("resize_ratio", 1.0))
    info = {"root": str(root), "layout": layout["layout"],
            "folders": {k: (str(layout[k].relative_to(root)) if layout[k] not in (None, root) else
                            (None if layout[k] is None else ".")) for k in ("train", "test", "val")},
            "resolution": resolution, "resolution_rule": "median shorter side, at most 224" if auto_resolution else "given",
            "samples": {"train": len(train), "test": len(test), "val": len(val) if val is not None else 0}}
    if layout["test"] is None:
        info.update(test_fraction=params.get("test_fraction", 0.2), split_seed=seed)
    if class_list:
        info.update(class_list=str(class_list), class_list_sha256=file_sha256(class_list))
    make = lambda samples: FolderSource(samples, resolution, channels, ratio)  # noqa: E731
    return SplitSources(train=make(train), test=make(test), val=make(val) if val is not None else None,
                        class_names=list(classes), info=info)
