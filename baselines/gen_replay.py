"""``gen_replay``: deep generative replay with ONE generator shared by all tasks (Shin et al.,
NeurIPS 2017, "Continual Learning with Deep Generative Replay"), the single-generator design that
BrainCL's per-task completion networks are contrasted with.

The generator is a convolutional VAE built from the same CompressAI parts as BrainCL's codec
(``braincl.codec.analysis_net`` / ``synthesis_net``: stride-2 5x5 convolutions with GDN); the
encoder outputs a Gaussian posterior (mean and log-variance, 2M channels) on the 1/16 latent grid.

Per task t > 1, before any training on it:
1. sample ``replay_samples`` images from the generator (trained on tasks 1..t-1, z ~ N(0, I));
2. label them with the model as it stands, i.e. the previous solver (DGR's scheme), by argmax over
   the classes seen before this task. No frozen copy of the old model is kept: the labels are
   drawn once and the replay set lives only during the task.
Then the classifier trains on the task's data with one replay batch per step (equal weight), and
the same generator is retrained on the task's images plus the replayed images, so that it keeps
generating old classes. The whole generator (encoder and decoder: both must be kept to retrain it)
is charged under ``decoders`` at fp32.

Size rule: with ``size_by_budget`` the generator is as wide as the budget allows: the largest ``N`` up to
``N_max`` whose whole VAE (``M`` and ``depth`` fixed) fits in ``memory.budget``, found by bisection
(bytes grow with ``N``). A larger budget therefore buys a larger generator, as it buys more
exemplars for the replay baselines."""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from braincl.data.base import ImageDataset
from braincl.learner import Learner
from braincl.memory import BudgetExceeded
from braincl.memory.budget import module_nbytes
from braincl.registry import METHODS


class ConvVAE(nn.Module):
    """A VAE whose encoder/decoder are the codec's g_a/g_s layouts. Works on [0, 1] images padded
    to a multiple of 2**depth; the decoder outputs logits (Bernoulli likelihood per pixel)."""

    def __init__(self, channels: int, image_size: tuple[int, int], N: int, M: int, depth: int = 4):
        super().__init__()
        from braincl.codec import analysis_net, synthesis_net

        self.image_size = tuple(image_size)
        self.downsampling = 2**depth
        self.latent_shape = (M, *(math.ceil(s / self.downsampling) for s in image_size))
        self.encoder = analysis_net(channels, N, 2 * M, depth)
        self.decoder = synthesis_net(M, N, channels, depth)

    def loss(self, images: torch.Tensor, kl_weight: float) -> torch.Tensor:
        """Negative ELBO per image: Bernoulli reconstruction (summed over pixels) + KL to N(0, I)."""
        from braincl.codec import pad_to_multiple, to_unit

        x = to_unit(images)
        mu, logvar = self.encoder(pad_to_multiple(x, self.downsampling)).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        h, w = self.image_size
        logits = self.decoder(z)[..., :h, :w]
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return (rec + kl_weight * kl) / len(images)

    @torch.no_grad()
    def sample(self, n: int, device) -> torch.Tensor:
        """n uint8 images drawn from the prior."""
        from braincl.codec import to_uint8

        h, w = self.image_size
        z = torch.randn((n, *self.latent_shape), device=device)
        return to_uint8(torch.sigmoid(self.decoder(z)[..., :h, :w])).cpu()


@METHODS.register("gen_replay")
class GenerativeReplay(Learner):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.width = self.generator_width()
        self.generator = self.build_generator(self.width)
        self.history: list[dict] = []

    def build_generator(self, N: int) -> ConvVAE:
        C, H, W = self.ctx.image_shape
        return ConvVAE(C, (H, W), N, self.params["M"], self.params["depth"])

    def generator_width(self) -> int:
        """The module docstring's size rule, or ``N`` without ``size_by_budget`` or without a budget."""
        p = self.params
        if not p["size_by_budget"] or self.budget.total is None:
            return int(p["N"])
        low, high = 1, int(p["N_max"])
        if module_nbytes(self.build_generator(low)) > self.budget.total:
            return low  # setup() refuses it with the bytes it needs
        while low < high:
            mid = (low + high + 1) // 2
            if module_nbytes(self.build_generator(mid)) <= self.budget.total:
                low = mid
            else:
                high = mid - 1
        return low

    def generator_nbytes(self) -> int:
        return module_nbytes(self.generator)

    def setup(self):
        need = self.generator_nbytes()
        if self.budget.total is not None and self.budget.total < need:
            raise BudgetExceeded(
                f"gen_replay: memory.budget={self.budget.total} bytes cannot hold the generator "
                f"(N={self.width}, M={self.params['M']}: {need} bytes at fp32); give at least {need} bytes "
                "or lower method.params.N / M")

    def replay_set(self, task) -> ImageDataset | None:
        """Images from the generator, labelled by the previous solver over the classes seen before."""
        if task.index == 0:
            return None
        n = self.params["replay_samples"] or len(task.train)
        device = self.engine.device
        self.generator.to(device).eval()
        compute = self.engine.compute
        with compute.count("generator", "sample"):
            images = torch.cat([self.generator.sample(min(512, n - s), device) for s in range(0, n, 512)])
        old = [c for c in self.seen_classes if c not in task.classes]
        loader = self.engine.eval_loader(ImageDataset(lambda i: images[i], np.zeros(n), self.ctx.eval_transform))
        self.eval_mode()
        with compute.count("generator", "labels", backbone=self.model.backbone):
            scores, _, _ = self.engine.predict(self.predict, loader)
        labels = torch.as_tensor(old)[scores[:, old].argmax(dim=1)].numpy()
        return ImageDataset(lambda i: images[i], labels, self.ctx.train_transform)

    def train_generator(self, task, replay: ImageDataset | None) -> float:
        """Retrain the one shared generator on this task's images plus the replayed ones."""
        from tqdm.auto import tqdm

        from braincl.compute import FlopMeter

        images = task.train.images()
        if replay is not None:
            images = torch.cat([images, torch.stack([replay.reader(i) for i in range(len(replay))])])
        gen, p, device = self.generator.to(self.engine.device), self.params, self.engine.device
        gen.train()
        opt = torch.optim.Adam(gen.parameters(), lr=p["vae_lr"])
        rng = torch.Generator().manual_seed(self.ctx.seed * 1000 + task.index)
        steps = p["vae_epochs"] * math.ceil(len(images) / p["vae_batch_size"])
        last = float("nan")
        flops, t0 = FlopMeter(self.engine.count_flops), time.perf_counter()
        for _ in tqdm(range(steps), desc=f"task {task.index + 1} generator", disable=not self.engine.progress, leave=False):
            idx = torch.randint(len(images), (p["vae_batch_size"],), generator=rng)
            with flops.step(len(idx)):
                loss = gen.loss(images[idx].to(device), p["kl_weight"])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            last = float(loss.detach())
        gen.eval()
        self.engine.compute.add("generator", steps=steps, samples=steps * p["vae_batch_size"],
                                flops=flops.totals, wall_s=round(time.perf_counter() - t0, 3))
        return last

    def train_task(self, task):
        replay = self.replay_set(task)
        loader = self.train_loader(task)
        if replay is None:
            stats = self.engine.fit(self.model, loader, desc=f"task {task.index + 1} (gen_replay)")
        else:
            model = self.model

            def step(batch, replay_batch):
                return F.cross_entropy(model(batch[0]), batch[1]) + F.cross_entropy(model(replay_batch[0]), replay_batch[1])

            stats = self.engine.fit(model, loader, step=step, replay=self.engine.loader(replay, shuffle=True),
                                    desc=f"task {task.index + 1} (gen_replay)")
        vae_loss = self.train_generator(task, replay)
        self.history.append({"task": task.index, "replayed": 0 if replay is None else len(replay),
                             "train_steps": stats["steps"], "generator_loss": vae_loss})

    def memory(self):
        return super().memory().add("decoders", self.generator_nbytes())

    def info(self) -> dict:
        return {"generator": "one conv VAE shared by all tasks, retrained on each",
                "replay_labels": "argmax of the previous solver over the classes seen before the task",
                "generator_params": sum(p.numel() for p in self.generator.parameters()),
                "generator_width": self.width,
                "size_rule": ("widest N <= N_max that fits the budget" if self.params["size_by_budget"]
                              and self.budget.total is not None else "method.params.N"),
                "per_task": self.history}
