"""``imagefolder``: a torchvision ImageFolder tree, ``root/<split>/<class>/<image>``.

An optional class-list file (one folder name per line) restricts and orders the classes; the
ImageNet-100 loader builds on this. Images are stored at ``resolution`` px after the standard
evaluation resize and center crop; training crops come from the full-size file."""

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
        return self._decode(index)


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
    if root is None:
        raise DataError(f"data set {name!r} needs dataset.root. {how_to_get}")
    root = Path(root).expanduser()
    train_dir, test_dir = root / params.get("train_dir", "train"), root / params.get("test_dir", "val")
    if not train_dir.is_dir() or not test_dir.is_dir():
        raise DataError(
            f"data set {name!r} not found at {root}: expected {train_dir}/<class>/<image> and "
            f"{test_dir}/<class>/<image>. {how_to_get} Set dataset.root to the folder that holds "
            f"{train_dir.name}/ and {test_dir.name}/.")
    class_list = params.get("class_list")
    classes = read_class_list(class_list) if class_list else None
    train_samples, classes = scan_folder(train_dir, classes)
    test_samples, _ = scan_folder(test_dir, classes)
    resolution = int(params.get("resolution", 64))
    channels = int(params.get("channels", 3))
    ratio = float(params.get("resize_ratio", 256 / 224))
    info = {"root": str(root), "resolution": resolution}
    if class_list:
        info.update(class_list=str(class_list), class_list_sha256=file_sha256(class_list))
    return SplitSources(
        train=FolderSource(train_samples, resolution, channels, ratio),
        test=FolderSource(test_samples, resolution, channels, ratio),
        class_names=list(classes), info=info)


@DATASETS.register("imagefolder")
def build_imagefolder(root, params: dict) -> SplitSources:
    return build_folder_splits(root, params, "imagefolder",
                               "Any tree in torchvision's ImageFolder layout works.")
