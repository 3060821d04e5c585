"""One training engine for every method: optimizer, schedule, epochs, AMP, progress, evaluation.

A method supplies only its loss (``step``) and, where it needs one, a replay stream; everything
else is shared so that methods differ only in what the paper says they differ in."""

from __future__ import annotations

import contextlib
import math
import time
from typing import Callable, Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler, WeightedRandomSampler

from .compute import BackboneCounter, ComputeLog, FlopMeter, composition
from .loggers import RunLog
from .seeding import make_generator, worker_init_fn


def resolve_device(name: str) -> torch.device:
    """The torch device for ``device:``; a CUDA device this machine lacks is a config error."""
    from .config import ConfigError

    name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= count:
            found = "no CUDA device" if count == 0 else f"{count} CUDA device(s), numbered from 0"
            raise ConfigError(f"device: {name!r} was asked for but this machine has {found}; set device: auto "
                              "(CUDA when present, else the CPU) or device: cpu")
    return torch.device(name)


def build_optimizer(params: Iterable[nn.Parameter], cfg: dict) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    name = cfg["name"]
    wd = cfg.get("weight_decay", 0.0)
    if name == "sgd":
        return torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg.get("momentum", 0.0), weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=cfg["lr"], weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=wd)
    raise ValueError(f"unknown optimizer {name!r}; valid: sgd, adam, adamw")


def build_scheduler(optimizer, cfg: dict, total_steps: int):
    name = (cfg or {}).get("name", "none")
    if name == "none" or total_steps <= 0:
        return None
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))
    if name == "step":
        milestones = [max(1, int(m * total_steps)) for m in cfg.get("milestones", [0.5, 0.75])]
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=cfg.get("gamma", 0.1))
    raise ValueError(f"unknown scheduler {name!r}; valid: none, cosine, step")


def _cycle(loader: DataLoader):
    while True:
        yield from loader


class SeededSampler(Sampler):
    """Yields ``(index, seed)``: the base sampler's order plus one augmentation seed per sample.

    Seeds are drawn in the main process from the loader's own generator, so every sample's random
    augmentation is fixed by the run seed alone and not by ``num_workers``, ``persistent_workers``
    or which worker happens to load it."""

    def __init__(self, base: Sampler, generator: torch.Generator):
        self.base = base
        self.generator = generator

    def __len__(self) -> int:
        return len(self.base)

    def __iter__(self):
        # One draw per epoch, before the base sampler draws its order from its own generator.
        seeds = torch.randint(0, 2**62, (len(self.base),), generator=self.generator).tolist()
        return zip(iter(self.base), seeds)


class SeededDataset(Dataset):
    """Wraps a dataset so that ``dataset[(index, seed)]`` runs the item's transform under torch's CPU
    RNG seeded with ``seed``; the caller's RNG state is restored afterwards. Augmentations must
    draw from torch's RNG (torchvision's v2 transforms do). Other attributes pass through."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        return self.__getitems__([key])[0]

    def __getitems__(self, keys):
        # DataLoader calls this once per batch: one save/restore of the RNG state per batch.
        with torch.random.fork_rng(devices=[]):
            out = []
            for index, seed in keys:
                torch.default_generator.manual_seed(seed)  # CPU only: never touches a CUDA RNG
                out.append(self.dataset[index])
        return out

    def __getattr__(self, name):
        if name.startswith("__") or name == "dataset":  # unpickling in a worker probes these first
            raise AttributeError(name)
        return getattr(self.dataset, name)


def cross_entropy_step(model: nn.Module) -> Callable:
    def step(batch, replay=None):
        x, y = batch[0], batch[1]
        return nn.functional.cross_entropy(model(x), y)
    return step


class Engine:
    def __init__(self, train_cfg: dict, device: torch.device):
        self.cfg = train_cfg
        self.device = device
        self.amp = bool(train_cfg.get("amp")) and device.type == "cuda"
        self.channels_last = bool(train_cfg.get("channels_last"))
        self.progress = bool(train_cfg.get("progress", True))
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = bool(train_cfg.get("cudnn_benchmark"))
        self.steps_done = 0
        self.compute = ComputeLog()  # the runner sets compute.task; fit() logs every phase into it
        self.log = RunLog()          # the runner's loggers (braincl.loggers); none until it opens them

    @property
    def count_flops(self) -> bool:
        """Off: no FlopCounterMode anywhere (results are identical either way)."""
        return self.compute.count_flops

    @count_flops.setter
    def count_flops(self, on: bool) -> None:
        self.compute.count_flops = bool(on)

    # ------------------------------------------------------------------ data
    def loader(self, dataset, *, shuffle: bool, batch_size: int | None = None, drop_last: bool = False,
               weights: torch.Tensor | None = None, num_samples: int | None = None) -> DataLoader:
        """A DataLoader whose batches do not depend on ``num_workers``, ``persistent_workers`` or
        ``pin_memory`` (fast paths only): the shuffle order comes from the sampler's own generator
        (DataLoader also draws worker base seeds from its generator, once per epoch without
        persistent workers but once per loader with them) and each sample's augmentation from a
        seed drawn beside its index (see ``SeededSampler``).

        ``weights`` (one per sample) draws ``num_samples`` (default: ``len(dataset)``) indices per
        epoch with replacement, in proportion to the weights, instead of a shuffle."""
        workers = int(self.cfg.get("num_workers", 0))
        batch_size = batch_size or self.cfg["batch_size"]
        generator = make_generator()
        order_gen, aug_gen = (torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
                              for _ in range(2))
        if weights is not None:
            if len(weights) != len(dataset):
                raise ValueError(f"Engine.loader: {len(weights)} weights for {len(dataset)} samples")
            draws = len(dataset) if num_samples is None else int(num_samples)
            base = WeightedRandomSampler(weights, num_samples=draws, replacement=True, generator=order_gen)
        else:
            draws = len(dataset)
            base = RandomSampler(dataset, generator=order_gen) if shuffle else SequentialSampler(dataset)
        return DataLoader(
            SeededDataset(dataset),
            batch_size=batch_size,
            sampler=SeededSampler(base, aug_gen),
            drop_last=drop_last and draws > batch_size,
            num_workers=workers,
            pin_memory=bool(self.cfg.get("pin_memory")) and self.device.type == "cuda",
            persistent_workers=bool(self.cfg.get("persistent_workers")) and workers > 0,
            worker_init_fn=worker_init_fn if workers > 0 else None,
            generator=generator,
        )

    def eval_loader(self, dataset) -> DataLoader:
        return self.loader(dataset, shuffle=False, batch_size=self.cfg.get("eval_batch_size", 256))

    def to_device(self, batch):
        out = []
        for i, item in enumerate(batch):
            if isinstance(item, torch.Tensor):
                item = item.to(self.device, non_blocking=True)
                if i == 0 and self.channels_last and item.ndim == 4:
                    item = item.contiguous(memory_format=torch.channels_last)
            out.append(item)
        return out

    def prepare(self, model: nn.Module) -> nn.Module:
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def autocast(self):
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ training
    def fit(self, model: nn.Module, loader: DataLoader, *, step: Callable | None = None,
            params: Iterable[nn.Parameter] | None = None, epochs: int | None = None,
            optimizer: dict | None = None, replay: DataLoader | None = None,
            train_mode: Callable[[], None] | None = None, desc: str = "train",
            after_step: Callable[[], None] | None = None, phase: str = "train",
            backbone: nn.Module | None = None) -> dict:
        """Train for ``epochs`` over ``loader``. ``step(batch, replay_batch) -> loss``; ``replay`` is
        cycled alongside ``loader`` (one replay batch per step). Returns simple statistics.

        The run's compute is logged under ``phase`` (``braincl.compute``): steps, samples drawn,
        samples through ``backbone`` (default: ``model.backbone``; a method that trains something
        else on top of a network passes that network's backbone), FLOPs by purpose (each step's
        measured once per batch composition, ``braincl.compute.FlopMeter``), and wall time."""
        t_start = time.perf_counter()
        counter = BackboneCounter(backbone if backbone is not None else getattr(model, "backbone", None))
        flops = FlopMeter(self.count_flops)
        try:
            stats = self._fit(model, loader, step=step, params=params, epochs=epochs, optimizer=optimizer,
                              replay=replay, train_mode=train_mode, desc=desc, after_step=after_step, flops=flops,
                              phase=phase)
        finally:
            counter.close()
        self.compute.add(phase, steps=stats["steps"], samples=stats["samples"], backbone_forward=counter.forward,
                         backbone_backward=counter.backward, flops=flops.totals,
                         wall_s=round(time.perf_counter() - t_start, 3))
        return stats

    def _fit(self, model, loader, *, step, params, epochs, optimizer, replay, train_mode, desc, after_step,
             flops, phase) -> dict:
        from tqdm.auto import tqdm

        epochs = self.cfg["epochs"] if epochs is None else epochs
        model = self.prepare(model)
        params = list(model.parameters() if params is None else params)
        step = step or cross_entropy_step(model)
        opt_cfg = dict(self.cfg["optimizer"], **(optimizer or {}))
        opt = build_optimizer(params, opt_cfg)
        total = epochs * len(loader)
        sched = build_scheduler(opt, self.cfg.get("scheduler"), total)
        scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        replay_iter = _cycle(replay) if replay is not None else None
        losses, lrs, seen = [], [], 0
        bar = tqdm(total=total, desc=desc, disable=not self.progress or total == 0, leave=False, dynamic_ncols=True)
        for epoch in range(epochs):
            (train_mode or model.train)()
            epoch_start = len(losses)
            for batch in loader:
                batch = self.to_device(batch)
                replay_batch = self.to_device(next(replay_iter)) if replay_iter is not None else None
                with flops.step(composition(batch, replay_batch)):
                    with self.autocast():
                        loss = step(batch, replay_batch)
                    opt.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
                lrs.append(opt.param_groups[0]["lr"])  # the rate this step used, before the schedule moves it
                if sched is not None:
                    sched.step()
                if after_step is not None:
                    after_step()
                losses.append(loss.detach())
                seen += len(batch[0]) + (len(replay_batch[0]) if replay_batch is not None else 0)
                bar.update(1)
            if self.log.active and len(losses) > epoch_start:  # one more sync per epoch, none per step
                self.log.steps(self.compute.task, phase, epoch + 1,
                               torch.stack(losses[epoch_start:]).float().tolist(), lrs[epoch_start:])
            if losses:
                last = losses[-1].item()  # one sync per epoch, not per step
                if not math.isfinite(last):
                    bar.close()
                    raise FloatingPointError(
                        f"{desc}: training diverged (loss {last}) in epoch {epoch + 1}; lower train.optimizer.lr "
                        "or the method's regularisation weight")
                bar.set_postfix(epoch=epoch + 1, loss=f"{last:.3f}")
        bar.close()
        self.steps_done += total
        mean_loss = torch.stack(losses).float().mean().item() if losses else float("nan")
        return {"steps": total, "samples": seen, "mean_loss": mean_loss}

    # ------------------------------------------------------------------ inference
    @torch.inference_mode()
    def predict(self, fn: Callable[[torch.Tensor], torch.Tensor | tuple], loader: DataLoader, desc: str = "eval"):
        """Apply ``fn`` to every batch. ``fn`` returns scores, or (scores, features). Returns
        (scores, labels, features or None) on the CPU."""
        scores, labels, feats = [], [], []
        for batch in loader:
            batch = self.to_device(batch)
            with self.autocast():
                out = fn(batch[0])
            if isinstance(out, tuple):
                out, f = out
                feats.append(f.float().cpu())
            scores.append(out.float().cpu())
            labels.append(batch[1].cpu())
        cat = lambda xs: torch.cat(xs) if xs else None  # noqa: E731
        return cat(scores), cat(labels), cat(feats)
