"""Feature extractors. Each builder returns ``(module, feature_dim)``; the module maps images to
penultimate features (no classifier).

``resnet18`` is torchvision's. Its ImageNet stem (7x7 stride-2 conv and max-pool) suits images of
64 px and more; the small-image stem (3x3 stride-1 conv, no max-pool) is the CIFAR convention for
28-32 px. ``resnet18_slim`` is the same network at reduced width for CPU-scale runs. ``mlp`` is Mammoth's
MNISTMLP (``backbone/MNISTMLP.py``): flatten, then fully connected layers with ReLU (784-100-100)."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import BACKBONES


STEMS = ("auto", "imagenet", "small", "small_s2")


def _stem(stem: str, image_size: int) -> str:
    if stem == "auto":
        return "imagenet" if image_size >= 64 else "small"
    if stem not in STEMS:
        raise ValueError(f"model.params.stem must be one of {', '.join(STEMS)}, not {stem!r}")
    return stem


def _adapt_stem(net, stem: str, in_channels: int, width: int) -> None:
    """``small``: 3x3 stride-1 conv, no max-pool (CIFAR convention). ``small_s2``: the same conv at
    stride 2, a quarter of the small stem's compute, for CPU-scale runs on 28-32 px images."""
    if stem in ("small", "small_s2"):
        stride = 1 if stem == "small" else 2
        net.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=stride, padding=1, bias=False)
        net.maxpool = nn.Identity()
    elif in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)


@BACKBONES.register("resnet18")
def resnet18(in_channels: int, image_size: int, stem: str = "auto", pretrained: bool = False):
    from torchvision.models import resnet18 as tv_resnet18

    if pretrained:
        # Weights would come from a hub download; this suite trains from scratch, as in class-IL protocols.
        raise ValueError("model.params.pretrained is not supported: class-IL protocols train from scratch")
    net = tv_resnet18(weights=None)
    _adapt_stem(net, _stem(stem, image_size), in_channels, 64)
    net.fc = nn.Identity()
    return net, 512


def _slim_resnet_class():
    from torchvision.models.resnet import BasicBlock, ResNet

    class _SlimResNet(ResNet):
        def __init__(self, width: int):
            nn.Module.__init__(self)
            self._norm_layer = nn.BatchNorm2d
            self.inplanes, self.dilation, self.groups, self.base_width = width, 1, 1, 64
            self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            self.layer1 = self._make_layer(BasicBlock, width, 2)
            self.layer2 = self._make_layer(BasicBlock, width * 2, 2, stride=2)
            self.layer3 = self._make_layer(BasicBlock, width * 4, 2, stride=2)
            self.layer4 = self._make_layer(BasicBlock, width * 8, 2, stride=2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Identity()
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)

    _SlimResNet.__name__ = _SlimResNet.__qualname__ = "SlimResNet"
    _SlimResNet.__module__ = __name__
    return _SlimResNet


def __getattr__(name):
    """``SlimResNet`` is built on first use, so that importing this module (config validation,
    ``braincl list``) does not import torchvision. Pickle finds it here when a checkpoint loads."""
    if name == "SlimResNet":
        cls = _slim_resnet_class()
        globals()["SlimResNet"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@BACKBONES.register("resnet18_slim")
def resnet18_slim(in_channels: int, image_size: int, stem: str = "auto", width: int = 16):
    """ResNet-18 (torchvision's BasicBlock, [2, 2, 2, 2]) with base width ``width`` instead of 64."""
    cls = globals().get("SlimResNet") or __getattr__("SlimResNet")
    net = cls(width)
    _adapt_stem(net, _stem(stem, image_size), in_channels, width)
    return net, width * 8


@BACKBONES.register("mlp")
def mlp(in_channels: int, image_size: int, hidden=(100, 100)):
    """Fully connected layers with ReLU over the flattened image. Weights are Xavier-uniform and
    biases zero, as in Mammoth's MNISTMLP (``backbone/__init__.py: xavier``)."""
    hidden = [int(h) for h in hidden]
    if not hidden or min(hidden) < 1:
        raise ValueError(f"model.params.hidden must list positive layer widths, got {hidden}")
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_channels * image_size * image_size
    for h in hidden:
        linear = nn.Linear(width, h)
        nn.init.xavier_uniform_(linear.weight)
        nn.init.zeros_(linear.bias)
        layers += [linear, nn.ReLU()]
        width = h
    return nn.Sequential(*layers), width


def build_backbone(name: str, in_channels: int, image_size: int, params: dict):
    builder = BACKBONES.get(name)
    try:
        return builder(in_channels=in_channels, image_size=image_size, **(params or {}))
    except TypeError as err:
        raise ValueError(f"model.params for backbone {name!r}: {err}") from None
