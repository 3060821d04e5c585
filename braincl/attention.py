"""Attention drift: Grad-CAM maps (Selvaraju et al., ICCV 2017) for a fixed set of first-task test
images, recorded after every task so that the analysis can show how a method's focus moves as new
classes arrive (the paper's attention-drift figure).

Grad-CAM for class c at the last convolutional block A (K channels, h x w):
    alpha_k = mean_{i,j} d y_c / d A_k[i, j],   map = ReLU(sum_k alpha_k A_k),
normalised to [0, 1] by its maximum and resized to ``size`` x ``size`` so that records stay small
and maps from different backbones line up. ``c`` is the class the network's logits predict, as in
the original paper's "explain the decision" use.

The images are drawn once from task 0's test set with a fixed seed that depends neither on the run
seed nor on the method, so every run of a scenario explains the same images."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .seeding import derive_seed

MAP_SIZE = 7          # cells per side of a stored map (ResNet-18's layer4 at 224 px is 7 x 7)
DECIMALS = 3


def target_layer(model: nn.Module) -> nn.Module:
    """The last convolutional block: ``backbone.layer4`` for the ResNets, else the backbone's last
    child that holds a convolution."""
    backbone = getattr(model, "backbone", model)
    if hasattr(backbone, "layer4"):
        return backbone.layer4
    convs = [m for m in backbone.children() if any(isinstance(s, nn.Conv2d) for s in m.modules())]
    if not convs:
        raise ValueError(f"Grad-CAM needs a convolutional backbone; {type(backbone).__name__} has no Conv2d")
    return convs[-1]


def fixed_test_indices(num_test: int, num_images: int) -> list[int]:
    """Positions in task 0's test subset, the same for every method and run seed."""
    rng = np.random.default_rng(derive_seed("attention", "task0-test"))
    k = min(num_images, num_test)
    return sorted(rng.choice(num_test, size=k, replace=False).tolist())


def grad_cam(model: nn.Module, layer: nn.Module, x: torch.Tensor, num_classes: int,
             size: int = MAP_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM maps (N x size x size, in [0, 1]) and the predicted classes for a batch ``x``.
    Only the logits of the ``num_classes`` seen classes compete for the prediction."""
    captured = {}
    handle = layer.register_forward_hook(lambda _m, _i, out: captured.__setitem__("A", out))
    try:
        with torch.enable_grad():
            # uint8 batches are normalised first (the model passes float input through unchanged);
            # a leaf that requires grad keeps a graph even through a frozen backbone
            if x.dtype == torch.uint8 and hasattr(model, "normalize"):
                x = model.normalize(x)
            x = x.detach().float().clone().requires_grad_(True)
            logits = model(x)[:, :num_classes]
            pred = logits.argmax(dim=1)
            score = logits.gather(1, pred[:, None]).sum()
            acts = captured["A"]
            (grads,) = torch.autograd.grad(score, acts)
    finally:
        handle.remove()
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * acts).sum(dim=1, keepdim=True)).detach().float()
    cam = F.interpolate(cam, size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).max(dim=1).values.clamp_min(1e-12)[:, None, None]
    cam = (cam / peak).clamp(0, 1)
    return cam.cpu().numpy(), pred.cpu().numpy()


def attention_maps(learner, scenario, t: int, attention_cfg: dict) -> dict:
    """Grad-CAM maps of ``learner.model`` after task ``t`` for the fixed task-0 test images.
    Returns the ``analysis.attention.after_task[t]`` entry of the run record (schema v2)."""
    model = learner.model
    engine, ctx = learner.engine, learner.ctx
    task0 = scenario.task(0)
    positions = fixed_test_indices(len(task0.test), int(attention_cfg.get("num_images", 8)))
    data = task0.test.dataset(ctx.eval_transform)
    x = torch.stack([data[i][0] for i in positions])
    (x,) = engine.to_device([x])
    was_training = model.training
    model.eval()
    try:
        maps, pred = grad_cam(model, target_layer(model), x, len(scenario.classes_up_to(t)))
    finally:
        model.train(was_training)
    return {
        "task": t,
        "test_indices": positions,
        "image_ids": [int(task0.test.indices[i]) for i in positions],
        "labels": [int(task0.test.labels[i]) for i in positions],
        "predicted": pred.astype(int).tolist(),
        "maps": np.round(maps.astype(np.float64), DECIMALS).tolist(),  # float64 so 0.349 stays 0.349 in JSON
    }
