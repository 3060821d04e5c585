"""``medmnist``: a multi-class MedMNIST v2 flag (Yang et al., 2023) with its official splits.

One ``.npz`` per flag and size under ``dataset.root``: ``<flag>.npz`` at 28 px, ``<flag>_{64,128,224}.npz``
at larger sizes, with the keys ``{train,val,test}_images`` (N, H, W) or (N, H, W, 3) uint8 and
``{train,val,test}_labels`` (N, 1). The file is read here directly: the ``medmnist`` package's dataset
class asserts the official sample count, so it cannot open a shrunken file. ``download: true`` hands
a missing file to that class (``download=True``), which fetches it from Zenodo and checks its MD5.

Multi-label (ChestMNIST) and 3D flags do not fit class-incremental classification and are refused.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..registry import DATASETS
from .base import DataError, SplitSources, TensorSource

SIZES = (28, 64, 128, 224)
KEYS = [f"{split}_{kind}" for split in ("train", "val", "test") for kind in ("images", "labels")]
HOW_TO_GET = ("MedMNIST files are obtained from https://zenodo.org/records/10519652 (MedMNIST v2), "
              "or set dataset.params.download: true to let the medmnist package fetch the file.")


def _info(flag: str) -> dict:
    from medmnist import INFO

    if flag not in INFO:
        raise DataError(f"dataset.params.flag: unknown MedMNIST flag {flag!r}; valid: {', '.join(sorted(INFO))}")
    info = INFO[flag]
    if flag.endswith("3d"):
        raise DataError(f"dataset.params.flag: {flag} holds 3D volumes; class-IL here needs a 2D flag")
    if info["task"].startswith("multi-label"):
        raise DataError(f"dataset.params.flag: {flag} is multi-label ({info['task']}); class-incremental "
                        "learning needs one class per image. Use a multi-class flag such as bloodmnist, "
                        "organamnist, pathmnist or tissuemnist.")
    return info


def npz_name(flag: str, size: int) -> str:
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


def _download(flag: str, size: int, root: Path, info: dict) -> None:
    import medmnist

    root.mkdir(parents=True, exist_ok=True)
    cls = getattr(medmnist, info["python_class"])
    cls(split="train", download=True, root=str(root), size=size)


def _split(data, path: Path, split: str, size: int, channels: int, n_classes: int):
    images, labels = np.asarray(data[f"{split}_images"]), np.asarray(data[f"{split}_labels"])
    want = (size, size) if channels == 1 else (size, size, 3)
    if images.dtype != np.uint8 or images.ndim != 1 + len(want) or images.shape[1:] != want:
        raise DataError(f"{path}: {split}_images has dtype {images.dtype} and shape {images.shape}; expected "
                        f"uint8 (N, {', '.join(map(str, want))}) for this flag at size {size}")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{path}: {split}_labels has shape {labels.shape}; expected ({len(images)}, 1)")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(f"{path}: {split}_labels holds values outside 0..{n_classes - 1}")
    chw = images[:, None] if channels == 1 else images.transpose(0, 3, 1, 2)
    return TensorSource(np.ascontiguousarray(chw), labels.astype(np.int64))


@DATASETS.register("medmnist")
def build_medmnist(root, params: dict) -> SplitSources:
    flag = params.get("flag")
    if not flag:
        raise DataError("dataset.params.flag is required for medmnist (e.g. bloodmnist, organamnist, pathmnist)")
    size = int(params.get("size", 28))
    if size not in SIZES:
        raise DataError(f"dataset.params.size must be one of {SIZES}, not {size}")
    info = _info(str(flag))
    if root is None:
        if not params.get("download"):
            raise DataError(f"data set 'medmnist' needs dataset.root: the folder holding {npz_name(flag, size)}. "
                            f"{HOW_TO_GET} Set dataset.root (or --set dataset.root=...).")
        from medmnist.info import DEFAULT_ROOT

        root = DEFAULT_ROOT
    root = Path(root).expanduser()
    path = root / npz_name(flag, size)
    if not path.is_file():
        if params.get("download"):
            _download(flag, size, root, info)
        else:
            raise DataError(f"MedMNIST file not found: {path}. Expected dataset.root/{npz_name(flag, size)} with "
                            f"the keys {', '.join(KEYS)}. {HOW_TO_GET}")
    try:
        data = np.load(path)
        missing = [k for k in KEYS if k not in data.files]
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DataError(f"cannot read {path}: {err}. Delete it and obtain it again.") from None
    if missing:
        raise DataError(f"{path} lacks the key(s) {', '.join(missing)}; a MedMNIST file holds {', '.join(KEYS)}")
    channels, n_classes = int(info["n_channels"]), len(info["label"])
    with data:
        train, val, test = (_split(data, path, s, size, channels, n_classes) for s in ("train", "val", "test"))
    return SplitSources(
        train=train, test=test, val=val,
        class_names=[info["label"][str(i)] for i in range(n_classes)],
        info={"flag": flag, "size": size, "file": str(path), "task": info["task"],
              "samples": {"train": len(train), "val": len(val), "test": len(test)},
              "official_samples": info["n_samples"]},
    )
