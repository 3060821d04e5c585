"""The test images that a run's Grad-CAM maps explain, rebuilt from the data set its record names.

The attention block of a record keeps ``image_ids`` (indices into the data set's test split) but not
the pixels; the split is deterministic, so the same builder gives the same images. This runs as a
child process of the analysis (``python -m analysis.explained_images`` with
``{"dataset": <record config.dataset>, "image_ids": [...]}`` on stdin, a JSON list of H x W grey
images in [0, 1] on stdout), because building a data set imports torch and the analysis itself never
does. A data set that cannot be built here (not downloaded) exits with status 1 and a one-line reason."""

from __future__ import annotations

import json
import sys


def explained_images(dataset_cfg: dict, image_ids: list[int]) -> list:
    import numpy as np

    from braincl.runner import build_data

    splits = build_data({"dataset": dataset_cfg})
    x = splits.test.read_many([int(i) for i in image_ids]).numpy().astype(np.float64)
    grey = x.mean(axis=1) / 255.0  # N x H x W; colour images as their mean over channels
    return np.round(grey, 3).tolist()


def main() -> int:
    try:
        request = json.loads(sys.stdin.read())
        images = explained_images(request["dataset"], request["image_ids"])
    except Exception as err:  # noqa: BLE001 - any failure means: draw the maps without images
        print(f"cannot rebuild the explained images: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    json.dump(images, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
