"""Tiny data sets written in the real on-disk formats (ILSVRC2012 folders, CORe50 128x128 PNGs,
MedMNIST npz), a few images per class, for loader and end-to-end tests.

Each class gets its own colour plus noise, so that the images differ and a model can tell classes
apart; nothing here depends on the real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def class_image(label: int, size: tuple[int, int], rng: np.random.Generator, channels: int = 3) -> np.ndarray:
    """A smooth coloured gradient per class plus noise: uint8 (H, W, C) or (H, W)."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([(label * 53 % 255) * (0.5 + 0.5 * xx), (label * 97 % 255) * (0.5 + 0.5 * yy),
                     np.full((h, w), label * 31 % 255)], axis=-1)
    img = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    return img[..., 0] if channels == 1 else img


def write_imagenet_tree(root: Path, wnids: list[str], n_train: int = 3, n_val: int = 2, size=(40, 48),
                        flat_val: bool = False, seed: int = 0) -> dict[str, str]:
    """root/train/<wnid>/<wnid>_<k>.JPEG and root/val/<wnid>/ILSVRC2012_val_<n>.JPEG (or flat in val/).
    Returns {val image id: wnid} (the ground truth)."""
    rng = np.random.default_rng(seed)
    truth, n = {}, 0
    for label, wnid in enumerate(wnids):
        (root / "train" / wnid).mkdir(parents=True, exist_ok=True)
        for k in range(n_train):
            Image.fromarray(class_image(label, size, rng)).save(root / "train" / wnid / f"{wnid}_{k}.JPEG")
        for _ in range(n_val):
            n += 1
            image_id = f"ILSVRC2012_val_{n:08d}"
            folder = root / "val" if flat_val else root / "val" / wnid
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(class_image(label, size, rng)).save(folder / f"{image_id}.JPEG")
            truth[image_id] = wnid
    return truth


def write_loc_solution(path: Path, truth: dict[str, str]) -> Path:
    """The Kaggle LOC_val_solution.csv format: ImageId,PredictionString ("wnid x0 y0 x1 y1 ...")."""
    lines = ["ImageId,PredictionString"] + [f"{i},{w} 10 12 30 40 {w} 1 2 3 4 " for i, w in truth.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_devkit(devkit: Path, truth: dict[str, str], all_wnids: list[str]) -> Path:
    """ILSVRC2012_devkit_t12/data/{meta.mat, ILSVRC2012_validation_ground_truth.txt}: the meta's IDs
    are deliberately not in sorted-wnid order, as in the real devkit."""
    import scipy.io

    (devkit / "data").mkdir(parents=True, exist_ok=True)
    order = list(reversed(all_wnids))  # ILSVRC2012_ID k+1 -> order[k]
    dtype = [("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("gloss", "O"), ("num_children", "O")]
    synsets = np.array([(k + 1, w, w, "", 0) for k, w in enumerate(order)], dtype=dtype)
    scipy.io.savemat(str(devkit / "data" / "meta.mat"), {"synsets": synsets})
    ids = [order.index(truth[i]) + 1 for i in sorted(truth)]
    (devkit / "data" / "ILSVRC2012_validation_ground_truth.txt").write_text("\n".join(map(str, ids)) + "\n")
    return devkit


def write_core50(root: Path, sessions: list[int], objects: list[int], frames: int = 3, seed: int = 0) -> Path:
    """root/core50_128x128/s<s>/o<o>/C_<ss>_<oo>_<fff>.png at 128x128 RGB. Returns the release folder."""
    rng = np.random.default_rng(seed)
    release = root / "core50_128x128"
    for s in sessions:
        for o in objects:
            folder = release / f"s{s}" / f"o{o}"
            folder.mkdir(parents=True, exist_ok=True)
            for f in range(frames):
                img = class_image(o, (128, 128), rng)
                Image.fromarray(img).save(folder / f"C_{s:02d}_{o:02d}_{f:03d}.png")
    return release


def write_medmnist(root: Path, flag: str, size: int = 28, per_class: dict | None = None, seed: int = 0,
                   drop_keys: tuple = ()) -> Path:
    """<flag>.npz / <flag>_<size>.npz with the official keys; labels as (N, 1) arrays."""
    from medmnist import INFO

    info = INFO[flag]
    channels, n_classes = int(info["n_channels"]), len(info["label"])
    per_class = per_class or {"train": 6, "val": 2, "test": 3}
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in per_class.items():
        labels = np.repeat(np.arange(n_classes), n)
        arrays[f"{split}_images"] = np.stack([class_image(int(c), (size, size), rng, channels) for c in labels])
        arrays[f"{split}_labels"] = labels.reshape(-1, 1).astype(np.uint8)
    for key in drop_keys:
        arrays.pop(key)
    root.mkdir(parents=True, exist_ok=True)
    path = root / (f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz")
    np.savez_compressed(path, **arrays)
    return path


def write_image_folder(root: Path, classes: list[str], counts: dict[str, int], size=(32, 32), seed: int = 0,
                       suffix: str = ".png") -> Path:
    """Your own data: root/<split>/<class>/<class>_<k><suffix> for each split in ``counts``; the split
    ``"."`` writes root/<class>/... (one folder of class folders). Returns root."""
    rng = np.random.default_rng(seed)
    for split, n in counts.items():
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(n):
                Image.fromarray(class_image(label, size, rng)).save(folder / f"{name}_{split.strip('./') or 'all'}_{k}{suffix}")
    return root
