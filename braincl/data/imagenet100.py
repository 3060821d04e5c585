"""``imagenet100``: 100 ImageNet-1k classes read from the standard ILSVRC2012 folder tree.

Layout (``dataset.root``)::

    root/train/<wnid>/<image>.JPEG     the 1,000 (or at least the 100 used) class folders
    root/val/<wnid>/<image>.JPEG       validation images sorted into class folders

Two class lists ship with the package (``dataset.params.class_list``); a path to any text file of
wnids works too. The run record names the list and its sha256.

- ``podnet``: the UCIR/PODNet split (Douillard et al., 2020), ``imagenet_split/{train,val}_100.txt``.
- ``seed1993``: the first 100 of the 1,000 sorted ImageNet-1k wnids after
  ``np.random.seed(1993); np.random.permutation(1000)`` - the PyCIL/FACIL class-order convention
  applied to class selection. :func:`derive_seed1993` recomputes it from ``imagenet1k_wnids.txt``.

Images are stored at ``resolution`` px after Resize(resolution * 256/224) and CenterCrop (the
standard evaluation view); training crops (RandomResizedCrop) come from the full-size file.

If the validation images lie flat in ``val/`` (as ``ILSVRC2012_img_val.tar`` unpacks), sort them:
``python -m braincl.data.imagenet100 sort-val --val ROOT/val --solution LOC_val_solution.csv`` (Kaggle
format) or ``--devkit ILSVRC2012_devkit_t12`` (the official devkit: ground truth + meta.mat).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path

import numpy as np

from ..registry import DATASETS
from .base import DataError, SplitSources
from .imagefolder import build_folder_splits, read_class_list

CLASS_LIST_DIR = Path(__file__).resolve().parent / "class_lists"
CLASS_LISTS = {"podnet": "imagenet100_podnet.txt", "seed1993": "imagenet100_seed1993.txt"}
IMAGENET1K_WNIDS = CLASS_LIST_DIR / "imagenet1k_wnids.txt"

HOW_TO_GET = ("ImageNet (ILSVRC2012) is obtained from https://image-net.org/download (free for "
              "non-commercial research, after registration) or the Kaggle 'ImageNet Object Localization "
              "Challenge'; unpack ILSVRC2012_img_train.tar (one tar per class) and ILSVRC2012_img_val.tar.")
LAYOUT = "ROOT/train/<wnid>/<image>.JPEG and ROOT/val/<wnid>/<image>.JPEG (e.g. ROOT/train/n01440764/...)"
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}


def derive_seed1993(wnids: list[str], seed: int = 1993, count: int = 100) -> list[str]:
    """First ``count`` wnids after a seeded permutation of the sorted list (PyCIL/FACIL convention:
    ``np.random.seed(seed); order = np.random.permutation(n)``)."""
    wnids = sorted(wnids)
    order = np.random.RandomState(seed).permutation(len(wnids))
    return [wnids[i] for i in order[:count]]


def resolve_class_list(choice) -> Path:
    """``podnet`` | ``seed1993`` | a path to a text file (one wnid per line)."""
    if choice in (None, ""):
        raise DataError("dataset.params.class_list is required for imagenet100: podnet, seed1993 or a file path")
    choice = str(choice)
    if choice in CLASS_LISTS:
        return CLASS_LIST_DIR / CLASS_LISTS[choice]
    path = Path(choice).expanduser()
    if not path.is_file():
        raise DataError(f"dataset.params.class_list: {choice!r} is neither a shipped list "
                        f"({', '.join(CLASS_LISTS)}) nor an existing file")
    return path


def verify_images(samples: list[tuple[str, int]], mode: str = "header") -> None:
    """Open every image before training so that a broken file stops the run at once.

    ``header`` reads each file's header with Pillow (cheap: catches empty, truncated-header and
    non-image files); ``full`` decodes every image; ``none`` skips the check (a broken file then
    stops the run when it is first read)."""
    if mode == "none":
        return
    if mode not in ("header", "full"):
        raise DataError(f"dataset.params.verify must be header, full or none, not {mode!r}")
    from PIL import Image, UnidentifiedImageError

    for path, _ in samples:
        try:
            with Image.open(path) as img:
                if mode == "full":
                    img.load()
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
            raise DataError(f"cannot read image {path}: {err}. Replace or delete the file.") from None


def subsample_per_class(samples: list[tuple[str, int]], limit, seed: int) -> list[tuple[str, int]]:
    """At most ``limit`` training images per class, drawn reproducibly (CPU-scale runs)."""
    if limit is None:
        return samples
    rng = np.random.default_rng(seed)
    labels = np.asarray([label for _, label in samples])
    keep = []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        keep.extend(rng.permutation(idx)[: int(limit)].tolist())
    return [samples[i] for i in sorted(keep)]


def _check_tree(root: Path, params: dict, classes: list[str], class_list: Path) -> None:
    for key, default in (("train_dir", "train"), ("test_dir", "val")):
        split_dir = root / params.get(key, default)
        if not split_dir.is_dir():
            raise DataError(f"ImageNet-100 not found: {split_dir} does not exist. Expected {LAYOUT}. "
                            f"{HOW_TO_GET} Set dataset.root to the folder that holds train/ and val/.")
        folders = {p.name for p in split_dir.iterdir() if p.is_dir()}
        if not folders and any(p.suffix.lower() in IMAGE_SUFFIXES for p in split_dir.iterdir()):
            raise DataError(
                f"{split_dir} holds images but no class folders: the validation images are still flat. "
                f"Sort them with: python -m braincl.data.imagenet100 sort-val --val {split_dir} "
                "--solution LOC_val_solution.csv (or --devkit ILSVRC2012_devkit_t12)")
        missing = [c for c in classes if c not in folders]
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise DataError(f"class list {class_list} names {len(missing)} class folder(s) absent from "
                            f"{split_dir}: {shown}. Expected {LAYOUT}.")


@DATASETS.register("imagenet100")
def build_imagenet100(root, params: dict) -> SplitSources:
    if root is None:
        raise DataError(f"data set 'imagenet100' needs dataset.root: the folder with {LAYOUT}. {HOW_TO_GET} "
                        "Set it in the config (dataset.root: /data/imagenet) or with --set dataset.root=...")
    root = Path(root).expanduser()
    class_list = resolve_class_list(params.get("class_list", "podnet"))
    classes = read_class_list(class_list)
    _check_tree(root, params, classes, class_list)
    splits = build_folder_splits(root, {**params, "class_list": str(class_list),
                                        "resolution": params.get("resolution", 224)},
                                 "imagenet100", HOW_TO_GET)
    splits.train.samples = subsample_per_class(splits.train.samples, params.get("max_train_per_class"),
                                               int(params.get("split_seed", 0)))
    splits.train.targets = np.asarray([label for _, label in splits.train.samples], dtype=np.int64)
    for source in (splits.train, splits.test):
        verify_images(source.samples, str(params.get("verify", "header")))
    name = str(params.get("class_list", "podnet"))
    splits.info.update(class_list_name=name if name in CLASS_LISTS else "file",
                       max_train_per_class=params.get("max_train_per_class"))
    return splits


# ---------------------------------------------------------------------------------------------
# Sorting flat validation images into class folders


def val_labels_from_solution(path: Path) -> dict[str, str]:
    """``LOC_val_solution.csv`` (Kaggle): ``ImageId,PredictionString`` where the string starts with
    the wnid of the first box (every box of a validation image has the image's class)."""
    if not path.is_file():
        raise DataError(f"ground-truth file not found: {path}")
    out = {}
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"ImageId", "PredictionString"} <= set(reader.fieldnames):
            raise DataError(f"{path}: expected the columns ImageId,PredictionString (LOC_val_solution.csv)")
        for row in reader:
            tokens = row["PredictionString"].split()
            if not tokens:
                raise DataError(f"{path}: image {row['ImageId']} has an empty PredictionString")
            out[row["ImageId"]] = tokens[0]
    return out


def val_labels_from_devkit(devkit: Path) -> dict[str, str]:
    """The official devkit: ``data/ILSVRC2012_validation_ground_truth.txt`` holds one ILSVRC2012_ID per
    validation image (line i for ILSVRC2012_val_{i:08d}); ``data/meta.mat`` maps the IDs to wnids."""
    import scipy.io

    truth, meta_file = devkit / "data" / "ILSVRC2012_validation_ground_truth.txt", devkit / "data" / "meta.mat"
    for f in (truth, meta_file):
        if not f.is_file():
            raise DataError(f"devkit file not found: {f} (expected the unpacked ILSVRC2012_devkit_t12 folder)")
    try:
        synsets = scipy.io.loadmat(str(meta_file), squeeze_me=True)["synsets"]
        id_to_wnid = {int(i): str(w) for i, w in zip(synsets["ILSVRC2012_ID"], synsets["WNID"])}
    except (KeyError, ValueError, TypeError, OSError) as err:
        raise DataError(f"cannot read {meta_file}: {err}") from None
    out = {}
    for n, line in enumerate(truth.read_text().split(), start=1):
        if int(line) not in id_to_wnid:
            raise DataError(f"{truth}: line {n} names ILSVRC2012_ID {line}, which {meta_file} does not define")
        out[f"ILSVRC2012_val_{n:08d}"] = id_to_wnid[int(line)]
    return out


def sort_val(val_dir: Path, labels: dict[str, str], dry_run: bool = False) -> int:
    """Move ``val_dir/<ImageId>.JPEG`` into ``val_dir/<wnid>/``. Returns the number of files moved."""
    if not val_dir.is_dir():
        raise DataError(f"validation folder not found: {val_dir}")
    images = sorted(p for p in val_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    unknown = [p.name for p in images if p.stem not in labels]
    if unknown:
        raise DataError(f"{len(unknown)} image(s) in {val_dir} have no ground truth, e.g. {unknown[0]}")
    for p in images:
        if not dry_run:
            (val_dir / labels[p.stem]).mkdir(exist_ok=True)
            shutil.move(str(p), str(val_dir / labels[p.stem] / p.name))
    return len(images)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m braincl.data.imagenet100",
                                     description="ImageNet-100 helpers.")
    sub = parser.add_subparsers(dest="command", required=True)
    sv = sub.add_parser("sort-val", help="sort flat ILSVRC2012 validation images into <wnid>/ folders")
    sv.add_argument("--val", required=True, type=Path, help="folder holding ILSVRC2012_val_*.JPEG")
    src = sv.add_mutually_exclusive_group(required=True)
    src.add_argument("--solution", type=Path, help="LOC_val_solution.csv (Kaggle localization challenge)")
    src.add_argument("--devkit", type=Path, help="unpacked ILSVRC2012_devkit_t12 folder")
    sv.add_argument("--dry-run", action="store_true", help="check the ground truth, move nothing")
    args = parser.parse_args(argv)
    try:
        labels = val_labels_from_solution(args.solution) if args.solution else val_labels_from_devkit(args.devkit)
        moved = sort_val(args.val, labels, dry_run=args.dry_run)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{'would move' if args.dry_run else 'moved'} {moved} images into class folders under {args.val}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
