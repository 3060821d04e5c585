"""Transforms from config: a list of ``{name: <torchvision.transforms.v2 class>, **kwargs}``.

They act on uint8 CHW tensors and return uint8: conversion to float and normalisation happen once
per batch inside the model (``braincl.models.net.InputNormalize``), not once per sample."""

from __future__ import annotations

import torch


class Identity:
    """The empty pipeline (picklable, unlike a lambda, for DataLoader workers)."""

    def __call__(self, image):
        return image


def build_transform(specs: list[dict], normalize: dict | None = None):
    """The augmentation pipeline. With ``normalize`` it also converts to normalised floats (for
    code that feeds a model without ``InputNormalize``); the runner leaves that to the model."""
    from torchvision.transforms import v2

    steps = []
    for spec in specs or []:
        spec = dict(spec)
        name = spec.pop("name")
        cls = getattr(v2, name, None)
        if cls is None or not isinstance(cls, type):
            raise ValueError(f"unknown transform {name!r}: use a class name from torchvision.transforms.v2")
        steps.append(cls(**spec))
    if normalize:
        steps.append(v2.ToDtype(torch.float32, scale=True))
        steps.append(v2.Normalize(mean=list(normalize["mean"]), std=list(normalize["std"])))
    return v2.Compose(steps) if steps else Identity()


def check_transforms(cfg: dict) -> None:
    """Build both pipelines once so that a typo fails before any work starts."""
    tcfg = cfg["dataset"]["transforms"]
    normalize = tcfg.get("normalize")
    normalize = normalize if isinstance(normalize, dict) else None  # auto / none: resolved from the data
    for key in ("train", "eval"):
        if isinstance(tcfg.get(key), str):
            continue  # auto: chosen from the image size once the data is read (braincl.data.auto)
        try:
            build_transform(tcfg.get(key, []), normalize)
        except (TypeError, ValueError) as err:
            raise ValueError(f"dataset.transforms.{key}: {err}") from None
