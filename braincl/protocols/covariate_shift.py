"""``covariate_shift``: accuracy of the final model on corrupted copies of the test set of every
seen task, per corruption and severity, beside the clean accuracy.

Corruptions follow ImageNet-C (Hendrycks & Dietterich, ICLR 2019) and use the severity constants of
its generation scripts (hendrycks/robustness, ``ImageNet-C/create_c/make_*_c.py``), implemented with
numpy/scipy/Pillow on the stored uint8 images:

- ``gaussian_noise``  x + N(0, c^2)
- ``shot_noise``      Poisson(x * c) / c
- ``gaussian_blur``   Gaussian filter of standard deviation c px
- ``motion_blur``     one-sided line blur (radius, sigma) px at a random angle in [-45, 45] deg, after
  ImageMagick's MotionBlurImage that the scripts call through Wand
- ``contrast``        (x - mean) * c + mean, per channel
- ``brightness``      V + c in HSV (grey images: x + c)
- ``jpeg``            JPEG re-encoding at quality c

Hendrycks gives one table per image size: ImageNet-C (224 px), Tiny-ImageNet-C (64 px) and
CIFAR-10-C (32 px). ``constants: auto`` takes the table nearest to the stored size on a log scale
(up to 45 px: CIFAR-10-C, up to 120 px: Tiny-ImageNet-C, else ImageNet-C). Random draws are seeded per
(seed, corruption, severity, image), so results do not depend on batching or workers. Images are
corrupted in their stored form, then go through the evaluation transform, as clean ones do.
"""

from __future__ import annotations

import io

import numpy as np
import torch

from ..config import ConfigError
from . import Protocol, register

CONSTANTS = {  # severity 1..5, verbatim from make_imagenet_c.py / make_tinyimagenet_c.py / make_cifar_c.py
    "imagenet": {
        "gaussian_noise": [0.08, 0.12, 0.18, 0.26, 0.38],
        "shot_noise": [60, 25, 12, 5, 3],
        "gaussian_blur": [1, 2, 3, 4, 6],
        "motion_blur": [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)],
        "contrast": [0.4, 0.3, 0.2, 0.1, 0.05],
        "brightness": [0.1, 0.2, 0.3, 0.4, 0.5],
        "jpeg": [25, 18, 15, 10, 7],
    },
    "tiny_imagenet": {
        "gaussian_noise": [0.04, 0.08, 0.12, 0.15, 0.18],
        "shot_noise": [250, 100, 50, 30, 15],
        "gaussian_blur": [0.5, 0.75, 1, 1.25, 1.5],
        "motion_blur": [(10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3)],
        "contrast": [0.4, 0.3, 0.2, 0.1, 0.05],
        "brightness": [0.1, 0.2, 0.3, 0.4, 0.5],
        "jpeg": [65, 58, 50, 40, 25],
    },
    "cifar": {
        "gaussian_noise": [0.04, 0.06, 0.08, 0.09, 0.10],
        "shot_noise": [500, 250, 100, 75, 50],
        "gaussian_blur": [0.4, 0.6, 0.7, 0.8, 1],
        "motion_blur": [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)],
        "contrast": [0.75, 0.5, 0.4, 0.3, 0.15],
        "brightness": [0.05, 0.1, 0.15, 0.2, 0.3],
        "jpeg": [80, 65, 58, 50, 40],
    },
}


def table_for(size: int) -> str:
    """The constants table nearest to ``size`` px on a log scale (32, 64, 224 px)."""
    return "cifar" if size <= 45 else "tiny_imagenet" if size <= 120 else "imagenet"


def check_params(name: str, params: dict, allowed: dict) -> dict:
    """Merge ``params`` over ``allowed`` (the defaults); unknown keys are a ConfigError naming them."""
    unknown = sorted(set(params) - set(allowed) - {"enabled"})
    if unknown:
        raise ConfigError(f"protocols.{name}: unknown parameter(s) {', '.join(unknown)}; valid: "
                          f"{', '.join(sorted(allowed))}")
    return {**allowed, **{k: v for k, v in params.items() if k != "enabled"}}


# ------------------------------------------------------------------ corruptions on float HWC in [0, 1]
def gaussian_noise(x, c, rng):
    return x + rng.normal(size=x.shape, scale=c)


def shot_noise(x, c, rng):
    return rng.poisson(x * c) / c


def gaussian_blur(x, c, rng):
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(x, sigma=(c, c, 0), mode="nearest")


def motion_kernel(radius: float, sigma: float, angle_deg: float) -> np.ndarray:
    """A one-sided line kernel as in ImageMagick's MotionBlurImage: width = 2 * ceil(radius) + 1 taps
    at distances i = 0..width-1 along ``angle``, weighted exp(-i^2 / 2 sigma^2), each at the nearest
    integer pixel offset (as ImageMagick rounds them), normalised to sum 1. Centre = no offset."""
    width = 2 * int(np.ceil(radius)) + 1
    kernel = np.zeros((2 * width + 1, 2 * width + 1))
    theta = np.deg2rad(angle_deg)
    for i in range(width):
        kernel[width - int(round(i * np.sin(theta))), width + int(round(i * np.cos(theta)))] += \
            np.exp(-(i ** 2) / (2 * sigma ** 2))
    return kernel / kernel.sum()


def motion_blur(x, c, rng):
    # Correlation with edge padding over the kernel's non-zero taps only (at most 41 at severity 5);
    # a dense 2-D filter with the 83 x 83 kernel would cost ~100x more at 224 px.
    kernel = motion_kernel(c[0], c[1], rng.uniform(-45, 45))
    r = kernel.shape[0] // 2
    h, w = x.shape[:2]
    padded = np.pad(x, ((r, r), (r, r), (0, 0)), mode="edge")
    out = np.zeros_like(x)
    for i, j in zip(*np.nonzero(kernel)):
        out += kernel[i, j] * padded[i:i + h, j:j + w]
    return out


def contrast(x, c, rng):
    means = x.mean(axis=(0, 1), keepdims=True)
    return (x - means) * c + means


def brightness(x, c, rng):
    """V + c in HSV with H and S kept. RGB = V * f(H, S), so this scales each pixel by (V + c) / V;
    black pixels (V = 0, S = 0) become grey c. Grey images: x + c."""
    if x.shape[-1] == 1:
        return x + c
    v = x.max(axis=-1, keepdims=True)
    target = np.clip(v + c, 0, 1)
    return np.where(v > 0, x * target / np.maximum(v, 1e-12), target)


def jpeg(x, c, rng):
    from PIL import Image

    img = np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)
    pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=int(c))
    out = np.asarray(Image.open(buf), dtype=np.float64) / 255
    return out[..., None] if out.ndim == 2 else out


CORRUPTIONS = {f.__name__: f for f in (gaussian_noise, shot_noise, gaussian_blur, motion_blur, contrast,
                                       brightness, jpeg)}


def corrupt(image: torch.Tensor, name: str, severity: int, rng: np.random.Generator,
            table: str = "imagenet") -> torch.Tensor:
    """Corrupt one uint8 (C, H, W) image with the constants of ``table``; returns uint8 (C, H, W)."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; valid: {', '.join(CORRUPTIONS)}")
    if not 1 <= severity <= 5:
        raise ValueError(f"severity must be 1..5, not {severity}")
    x = image.permute(1, 2, 0).numpy().astype(np.float64) / 255
    y = CORRUPTIONS[name](x, CONSTANTS[table][name][severity - 1], rng)
    y = np.round(np.clip(y, 0, 1) * 255).astype(np.uint8)
    return torch.from_numpy(np.ascontiguousarray(y.transpose(2, 0, 1)))


def sample_rng(seed: int, name: str, severity: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, list(CORRUPTIONS).index(name), severity, int(index)])


def seen_test_set(scenario, max_per_task, seed: int):
    """Indices into the test source and remapped labels of every task's test set (optionally at most
    ``max_per_task`` per task, drawn reproducibly)."""
    rng = np.random.default_rng(seed)
    idx, labels = [], []
    for t in range(scenario.num_tasks):
        sub = scenario.task(t).test
        keep = np.arange(len(sub)) if max_per_task is None else np.sort(rng.permutation(len(sub))[: int(max_per_task)])
        idx.append(sub.indices[keep])
        labels.append(sub.labels[keep])
    return scenario.splits.test, np.concatenate(idx), np.concatenate(labels)


def accuracy(learner, engine, dataset, num_seen: int) -> float:
    scores, labels, _ = engine.predict(learner.predictors()["main"], engine.eval_loader(dataset))
    return float((scores[:, :num_seen].argmax(dim=1) == labels).float().mean().item())


@register("covariate_shift")
class CovariateShift(Protocol):
    DEFAULTS = {"corruptions": list(CORRUPTIONS), "severities": [1, 2, 3, 4, 5], "constants": "auto",
                "max_per_task": None, "seed": None}

    def __init__(self, params: dict, seed: int):
        super().__init__(params, seed)
        p = check_params("covariate_shift", params, self.DEFAULTS)
        bad = [c for c in p["corruptions"] if c not in CORRUPTIONS]
        if not isinstance(p["corruptions"], list) or not p["corruptions"] or bad:
            raise ConfigError(f"protocols.covariate_shift.corruptions: unknown {bad or p['corruptions']}; "
                              f"valid: {', '.join(CORRUPTIONS)}")
        if not isinstance(p["severities"], list) or not p["severities"] or \
                not all(isinstance(s, int) and 1 <= s <= 5 for s in p["severities"]):
            raise ConfigError("protocols.covariate_shift.severities: a non-empty list of integers 1..5")
        if p["constants"] != "auto" and p["constants"] not in CONSTANTS:
            raise ConfigError(f"protocols.covariate_shift.constants: auto or one of {', '.join(CONSTANTS)}, "
                              f"not {p['constants']!r}")
        if p["max_per_task"] is not None and not (isinstance(p["max_per_task"], int) and p["max_per_task"] > 0):
            raise ConfigError("protocols.covariate_shift.max_per_task: null or a positive integer")
        self.p = p
        self.corruption_seed = int(p["seed"] if p["seed"] is not None else seed)

    def evaluate_final(self, learner, scenario, engine, ctx):
        from ..data.base import ImageDataset

        learner.eval_mode()
        source, indices, labels = seen_test_set(scenario, self.p["max_per_task"], self.corruption_seed)
        num_seen = scenario.num_classes
        table = table_for(min(source.size)) if self.p["constants"] == "auto" else self.p["constants"]
        clean = ImageDataset(lambda i: source.read(int(indices[i])), labels, ctx.eval_transform)
        out = {"clean": accuracy(learner, engine, clean, num_seen), "severities": self.p["severities"],
               "accuracy": {}, "constants_table": table, "samples": int(len(indices)), "seed": self.corruption_seed,
               "predictor": "main", "constants": {c: CONSTANTS[table][c] for c in self.p["corruptions"]}}
        for name in self.p["corruptions"]:
            row = []
            for sev in self.p["severities"]:
                def read(i, name=name, sev=sev):
                    k = int(indices[i])
                    return corrupt(source.read(k), name, sev, sample_rng(self.corruption_seed, name, sev, k), table)
                row.append(accuracy(learner, engine, ImageDataset(read, labels, ctx.eval_transform), num_seen))
            out["accuracy"][name] = row
        every = [a for row in out["accuracy"].values() for a in row]
        out["mean_corrupted"] = float(np.mean(every))
        return out
