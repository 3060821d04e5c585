"""``core50``: CORe50 (Lomonaco & Maltoni, 2017), the 128x128 release, for the NC protocol.

Layout (``dataset.root`` is ``core50_128x128/`` or the folder that holds it)::

    core50_128x128/s{1..11}/o{1..50}/C_{ss}_{oo}_{fff}.png

50 objects in 10 categories of 5 (o1-o5 plug adapters, o6-o10 mobile phones, ...), 11 sessions.
Sessions 3, 7 and 10 are the standard test sessions, the other 8 train. New Classes (NC): each
task brings new objects (``level: object``, 50 classes) or categories (``level: category``, 10).
Task sizes and order come from ``scenario`` (the official NC batches are 10 classes, then 5 per
batch: ``initial_classes: 10, increment: 5``).

Images are stored at ``resolution`` px (128 keeps the release as it is; less resizes on read).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..registry import DATASETS
from .base import DataError, SplitSources
from .imagefolder import FolderSource
from .imagenet100 import subsample_per_class, verify_images

CATEGORIES = ["plug_adapter", "mobile_phone", "scissor", "light_bulb", "can", "glass", "ball", "marker",
              "cup", "remote_control"]
OBJECT_NAMES = [f"{cat}{k}" for cat in CATEGORIES for k in range(1, 6)]  # o1 -> plug_adapter1, ...
TEST_SESSIONS = [3, 7, 10]
TRAIN_SESSIONS = [1, 2, 4, 5, 6, 8, 9, 11]
LAYOUT = "core50_128x128/s{1..11}/o{1..50}/C_{ss}_{oo}_{fff}.png"
HOW_TO_GET = ("CORe50 is obtained from https://vlomonaco.github.io/core50/ (core50_128x128.zip, about "
              "9 GB unpacked).")
FILE_RE = re.compile(r"^C_(\d{2})_(\d{2})_(\d{3})\.png$")


def category_of(obj: int) -> int:
    """Category index of object ``obj`` (1-based): o1-o5 -> 0, o6-o10 -> 1, ..., o46-o50 -> 9."""
    return (int(obj) - 1) // 5


class CORe50Source(FolderSource):
    """PNG frames resized to ``resolution`` on read. Training augmentation acts on the stored size,
    like every in-memory source, so raw exemplars and fresh samples share one pipeline."""

    def read_train(self, index: int):
        return self.read(index)


def find_release(root) -> Path:
    if root is None:
        raise DataError(f"data set 'core50' needs dataset.root: the folder {LAYOUT}. {HOW_TO_GET} "
                        "Set it in the config (dataset.root: /data/core50_128x128) or with --set dataset.root=...")
    root = Path(root).expanduser()
    for candidate in (root, root / "core50_128x128"):
        if (candidate / "s1").is_dir():
            return candidate
    raise DataError(f"CORe50 not found at {root}: expected {LAYOUT} (the folder with s1/ ... s11/). "
                    f"{HOW_TO_GET} Set dataset.root to core50_128x128/ or the folder that holds it.")


def _int_list(params: dict, key: str, default: list[int], low: int, high: int) -> list[int]:
    value = params.get(key)
    if value is None or value == "all":
        return list(default)
    if not isinstance(value, list) or not all(isinstance(v, int) and low <= v <= high for v in value) or not value:
        raise DataError(f"dataset.params.{key} must be a non-empty list of integers in {low}..{high} "
                        f"(or null), got {value!r}")
    return list(value)


def scan_sessions(release: Path, sessions: list[int], objects: list[int], label_of: dict[int, int]):
    samples = []
    for s in sessions:
        for o in objects:
            folder = release / f"s{s}" / f"o{o}"
            if not folder.is_dir():
                raise DataError(f"CORe50 folder missing: {folder}. Expected {LAYOUT}. {HOW_TO_GET}")
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")
            if not files:
                raise DataError(f"CORe50 folder {folder} holds no .png frames (expected C_{s:02d}_{o:02d}_000.png ...)")
            for p in files:
                m = FILE_RE.match(p.name)
                if not m or (int(m.group(1)), int(m.group(2))) != (s, o):
                    raise DataError(f"unexpected file {p}: CORe50 frames in s{s}/o{o} are named "
                                    f"C_{s:02d}_{o:02d}_<fff>.png")
                samples.append((str(p), label_of[o]))
    return samples


@DATASETS.register("core50")
def build_core50(root, params: dict) -> SplitSources:
    release = find_release(root)
    level = params.get("level", "object")
    if level not in ("object", "category"):
        raise DataError(f"dataset.params.level must be object (50 classes) or category (10), not {level!r}")
    objects = _int_list(params, "objects", list(range(1, 51)), 1, 50)
    test_sessions = _int_list(params, "test_sessions", TEST_SESSIONS, 1, 11)
    train_sessions = _int_list(params, "train_sessions", TRAIN_SESSIONS, 1, 11)
    overlap = sorted(set(test_sessions) & set(train_sessions))
    if overlap:
        raise DataError(f"dataset.params: sessions {overlap} are both train and test sessions")
    if level == "object":
        names = [OBJECT_NAMES[o - 1] for o in objects]
        label_of = {o: i for i, o in enumerate(objects)}
    else:  # o1-o5 -> category 0, o6-o10 -> 1, ...; labels stay contiguous over the categories used
        cats = sorted({category_of(o) for o in objects})
        names = [CATEGORIES[c] for c in cats]
        label_of = {o: cats.index(category_of(o)) for o in objects}
    train = scan_sessions(release, train_sessions, objects, label_of)
    test = scan_sessions(release, test_sessions, objects, label_of)
    train = subsample_per_class(train, params.get("max_train_per_class"), int(params.get("split_seed", 0)))
    verify = str(params.get("verify", "header"))
    verify_images(train, verify)
    verify_images(test, verify)
    resolution = int(params.get("resolution", 128))
    return SplitSources(
        train=CORe50Source(train, resolution, 3, resize_ratio=1.0),
        test=CORe50Source(test, resolution, 3, resize_ratio=1.0),
        class_names=names,
        info={"root": str(release), "level": level, "objects": objects, "train_sessions": train_sessions,
              "test_sessions": test_sessions, "resolution": resolution,
              "max_train_per_class": params.get("max_train_per_class"),
              "train_images": len(train), "test_images": len(test)},
    )
