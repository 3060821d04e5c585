"""The incremental network: a backbone plus a linear head that grows with each task."""

from __future__ import annotations

import warnings

import torch
from torch import nn


class IncrementalHead(nn.Module):
    """One linear layer over all classes seen so far. ``grow(n)`` adds ``n`` outputs and keeps the
    old rows, so old-class logits are unchanged by growth (PyCIL's SimpleLinear expansion)."""

    def __init__(self, in_features: int):
        super().__init__()
        self.in_features = in_features
        with warnings.catch_warnings():  # a zero-output layer warns that its init is a no-op
            warnings.simplefilter("ignore", UserWarning)
            self.fc = nn.Linear(in_features, 0)

    @property
    def num_classes(self) -> int:
        return self.fc.out_features

    def grow(self, n: int) -> None:
        old = self.fc
        new = nn.Linear(self.in_features, old.out_features + n).to(old.weight.device, old.weight.dtype)
        with torch.no_grad():
            new.weight[: old.out_features] = old.weight
            new.bias[: old.out_features] = old.bias
        self.fc = new

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)


class InputNormalize(nn.Module):
    """uint8 images in, normalised floats out, on the model's device.

    Data pipelines hand the model uint8 batches: a quarter of the bytes to collate, pin and copy,
    and one batched conversion instead of two per-sample transforms. Float input is taken as
    already normalised and passes through, so float pipelines keep working."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.uint8:
            return x
        return (x.float().div_(255.0) - self.mean) / self.std


class IncrementalNet(nn.Module):
    def __init__(self, backbone: nn.Module, feature_dim: int, normalize: dict | None = None):
        super().__init__()
        norm = normalize or {"mean": [0.0], "std": [1.0]}
        self.normalize = InputNormalize(norm["mean"], norm["std"])
        self.backbone = backbone
        self.feature_dim = feature_dim
        self.head = IncrementalHead(feature_dim)

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.backbone(self.normalize(x)), 1)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        feats = self.features(x)
        logits = self.head(feats)
        return (logits, feats) if return_features else logits


def build_model(cfg: dict, in_channels: int, image_size: int) -> IncrementalNet:
    from .backbones import build_backbone

    backbone, dim = build_backbone(cfg["model"]["backbone"], in_channels, image_size, cfg["model"].get("params", {}))
    return IncrementalNet(backbone, dim, cfg["dataset"].get("transforms", {}).get("normalize"))
