"""``braincl``: semi-parametric memory with wake-sleep consolidation (BrainCL, arXiv 2504.14727).

Per task (the paper's critical path, Sec. "Method"):
1. Memory encoding: train the task's codec (``braincl.codec``), freeze its completion network and
   entropy tables, encode every training image into a cue (working memory), discard ``g_a``.
2. Wake: the backbone is frozen (kept in eval mode, so its weights and BN statistics stay
   bit-identical); only the classifier learns, from the recalled current-task samples.
3. Sleep: per class, select the cues whose features lie closest to the class mean and move them
   to long-term memory (as many per class as the byte budget allows, class-balanced, evicting the
   least representative old cues); then fine-tune the whole model on recalled samples of every
   task, with batches balanced across tasks. Afterwards only long-term memory is kept.

Charged memory: long-term cues with their metadata (``cues``), every task's completion network at
its stored precision (``decoders``) and entropy tables (``entropy_tables``). Working memory exists
only during its own task and is dropped before the runner charges the memory.

Ablations (method params, recorded in the config and in ``info()``): ``sleep``,
``freeze_backbone_in_wake``, ``completion`` (``per_task`` or ``shared``: one ``g_s`` retrained on
every task; each task keeps its own entropy tables, so its old strings still decode to the exact
same latents, but those latents then pass through the drifted shared decoder), ``selection``,
``lambda``, ``N``/``M`` and ``decoder_precision``."""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import torch
from torch.utils.data import DataLoader, WeightedRandomSampler

from ..data.base import ImageDataset
from ..learner import Learner
from ..memory import BudgetExceeded
from ..memory.cues import CUE_HEADER, TASK_HEADER, CueStore
from ..memory.selection import select
from ..registry import METHODS
from ..seeding import make_generator, worker_init_fn

ABLATIONS = ("sleep", "freeze_backbone_in_wake", "completion", "selection", "lambda", "N", "M", "depth",
             "decoder_precision")


class RecallDataset(torch.utils.data.Dataset):
    """Decodes one cue per item (``cache_recall: false``), so recall can run in DataLoader workers.
    The decoders it holds live on the CPU."""

    def __init__(self, store: CueStore, decoders: list, transform):
        self.store, self.decoders, self.transform = store, decoders, transform

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, i: int):
        task = int(self.store.tasks[i])
        image = self.decoders[task].recall(self.store.verified([i]), self.store.shapes[task], 1)[0]
        return self.transform(image), int(self.store.labels[i])


@contextlib.contextmanager
def frozen(module: torch.nn.Module):
    """Turn off gradients of ``module`` for the duration (saves the backbone's backward pass)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(module.parameters(), flags):
            p.requires_grad_(f)


@METHODS.register("braincl")
class BrainCL(Learner):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        p = self.params
        if p["completion"] not in ("per_task", "shared"):
            raise ValueError(f"method.params.completion must be per_task or shared, not {p['completion']!r}")
        if p["decoder_precision"] not in ("fp32", "fp16"):
            raise ValueError(f"method.params.decoder_precision must be fp32 or fp16, not {p['decoder_precision']!r}")
        self.ltm = CueStore()                 # long-term memory: kept and charged
        self.decoders: list = []              # one CompletionNet per task (g_s shared when completion=shared)
        self.history: list[dict] = []         # per-task statistics for info()

    # ------------------------------------------------------------------ budget
    def fixed_nbytes(self) -> tuple[int, int]:
        """(decoder bytes, entropy-table bytes) of every task so far; a shared g_s counts once."""
        unique = {id(d.g_s): d.decoder_nbytes() for d in self.decoders}
        return sum(unique.values()), sum(d.tables_nbytes() for d in self.decoders)

    def setup(self):
        """Refuse a budget that cannot hold the completion networks and entropy tables of all
        ``num_tasks`` tasks plus one minimal cue per class. The table size is that of an untrained
        bottleneck (the trained one's CDF length depends on the data); each task re-checks exactly."""
        from ..codec import CompletionNet, build_codec, strip_density_model

        p, ctx = self.params, self.ctx
        codec = build_codec(ctx.image_shape[0], p["N"], p["M"], depth=p["depth"])
        codec.update(force=True)
        probe = CompletionNet(codec.g_s, strip_density_model(codec.entropy_bottleneck), ctx.image_shape[1:],
                              p["decoder_precision"])
        dec, tab = probe.decoder_nbytes(), probe.tables_nbytes()
        decoders = dec if p["completion"] == "shared" else dec * ctx.num_tasks
        cues = ctx.num_tasks * TASK_HEADER.size + ctx.num_classes * (CUE_HEADER.size + 4)  # rANS emits >= 4 B
        need = decoders + tab * ctx.num_tasks + cues
        if self.budget.total is not None and self.budget.total < need:
            raise BudgetExceeded(
                f"braincl: memory.budget={self.budget.total} bytes cannot hold the completion networks of "
                f"{ctx.num_tasks} tasks ({dec} bytes each at {p['decoder_precision']}, N={p['N']}, M={p['M']}, "
                f"completion={p['completion']}: {decoders} bytes) plus their entropy tables (about {tab} bytes per "
                f"task) and one cue per class ({cues} bytes at least). Give at least {need} bytes, or use a smaller "
                "codec (method.params.N / M), decoder_precision=fp16 or completion=shared")

    def fit_long_term_memory(self) -> int:
        """Cut long-term memory to the largest class-balanced number of cues per class that fits the
        budget left after decoders and tables (or to ``cues_per_class`` if that is smaller).
        Returns that number."""
        dec, tab = self.fixed_nbytes()
        available = self.budget.total - dec - tab if self.budget.total is not None else float("inf")
        where = f"braincl task {self.task_index + 1}"
        if available < 0:
            raise BudgetExceeded(
                f"{where}: the completion networks ({dec} bytes) and entropy tables ({tab} bytes) of "
                f"{len(self.decoders)} tasks exceed memory.budget={self.budget.total} bytes; give at least "
                f"{dec + tab} bytes plus room for cues, or a smaller codec")
        counts = self.ltm.per_class_count()
        high = max(counts.values()) if counts else 0
        if self.params["cues_per_class"] is not None:
            high = min(high, int(self.params["cues_per_class"]))
        low = 0  # largest m known to fit; sizes grow with m, so bisect
        while low < high:
            mid = (low + high + 1) // 2
            if self.ltm.nbytes_if_kept(self.ltm.first_per_class(mid)) <= available:
                low = mid
            else:
                high = mid - 1
        if low == 0 and counts:
            raise BudgetExceeded(
                f"{where}: after the completion networks ({dec} bytes) and entropy tables ({tab} bytes), "
                f"{available} bytes are left, which cannot hold one cue for each of the {len(counts)} classes "
                f"({self.ltm.nbytes_if_kept(self.ltm.first_per_class(1))} bytes); raise memory.budget")
        self.ltm.reduce_per_class(low)
        return low

    # ------------------------------------------------------------------ memory encoding
    def encode_task(self, task) -> CueStore:
        """Train this task's codec, freeze its completion network, encode the task's training images
        into working memory, and drop the separation network."""
        from ..codec import build_codec, encode, freeze, train_codec

        p, device = self.params, self.engine.device
        images = task.train.images()
        shared = self.decoders[0].g_s if (p["completion"] == "shared" and self.decoders) else None
        if shared is not None:
            shared.requires_grad_(True)  # the shared decoder keeps learning; old tasks decode through it
        codec = build_codec(self.ctx.image_shape[0], p["N"], p["M"], g_s=shared, depth=p["depth"])
        stats = train_codec(codec, images, lmbda=p["lambda"], epochs=p["codec_epochs"], steps=p["codec_steps"],
                            batch_size=p["codec_batch_size"], lr=p["codec_lr"], aux_lr=p["codec_aux_lr"],
                            device=device, progress=self.engine.progress, desc=f"task {task.index + 1} codec",
                            seed=self.ctx.seed * 1000 + task.index)
        completion = freeze(codec, self.ctx.image_shape[1:], p["decoder_precision"])
        strings, shape = encode(codec, images, p["recall_batch_size"], device)
        del codec  # g_a is not stored and not charged
        self.decoders.append(completion)
        wm = CueStore()
        wm.add(task.index, strings, task.train.labels, shape)
        self.history.append({"task": task.index, "codec": stats, "working_cues": len(wm),
                             "mean_cue_bytes": wm.mean_cue_bytes(), "latent_shape": list(shape),
                             "decoder_bytes": completion.decoder_nbytes(), "table_bytes": completion.tables_nbytes()})
        return wm

    def recalled(self, store: CueStore, transform) -> torch.utils.data.Dataset:
        """Recalled samples of ``store`` as a Dataset: decoded once into uint8 (``cache_recall``)
        or decoded item by item."""
        if self.params["cache_recall"]:
            images, labels = store.recall(self.decoders, self.params["recall_batch_size"], self.engine.device)
            return ImageDataset(lambda i: images[i], labels, transform)
        decoders = self.decoders if self.engine.device.type == "cpu" else [copy.deepcopy(d).to("cpu") for d in self.decoders]
        return RecallDataset(store, decoders, transform)

    # ------------------------------------------------------------------ phases
    def wake(self, task, wm: CueStore) -> dict:
        """Learn the new classes from working memory. With the backbone frozen it stays in eval mode
        (BN statistics untouched) and only the classifier's parameters reach the optimizer."""
        model = self.model
        loader = self.engine.loader(self.recalled(wm, self.ctx.train_transform), shuffle=True, drop_last=True)
        kwargs = dict(epochs=self.params["wake_epochs"], optimizer=self.params["wake_optimizer"] or None,
                      desc=f"task {task.index + 1} wake")
        if not self.params["freeze_backbone_in_wake"]:
            return self.engine.fit(model, loader, **kwargs)
        with frozen(model.backbone):
            return self.engine.fit(model, loader, params=model.head.parameters(), train_mode=model.eval, **kwargs)

    def transfer_to_long_term(self, task, wm: CueStore) -> int:
        """Sleep's first step: order each new class's cues by the selection strategy, move them to
        long-term memory, then evict down to what the budget holds. Returns cues per class kept."""
        strategy = self.params["selection"]
        images, labels = wm.recall(self.decoders, self.params["recall_batch_size"], self.engine.device)
        feats = self.selection_features(images) if strategy != "random" else np.zeros((len(wm), 1))
        for cls in task.classes:
            idx = np.flatnonzero(labels == cls)
            order = select(strategy, feats[idx], len(idx), seed=self.ctx.seed * 1000 + cls)
            self.ltm.extend(wm, idx[order])
        return self.fit_long_term_memory()

    def balanced_loader(self, datasets: list) -> DataLoader:
        """Batches drawn with replacement so that every task contributes equally in expectation."""
        data = torch.utils.data.ConcatDataset(datasets)
        weights = torch.cat([torch.full((len(d),), 1.0 / len(d)) for d in datasets])
        cfg = self.engine.cfg
        workers = int(cfg.get("num_workers", 0))
        draws = self.params["sleep_epoch_size"] or len(data)  # null: one epoch = every recalled sample once in expectation
        sampler = WeightedRandomSampler(weights, num_samples=int(draws), replacement=True, generator=make_generator())
        return DataLoader(data, batch_size=cfg["batch_size"], sampler=sampler, drop_last=int(draws) > cfg["batch_size"],
                          num_workers=workers, worker_init_fn=worker_init_fn if workers > 0 else None,
                          pin_memory=bool(cfg.get("pin_memory")) and self.engine.device.type == "cuda")

    def sleep(self, task, wm: CueStore) -> dict:
        """Consolidate: fine-tune the whole model on recalled samples of every task (old tasks from
        long-term memory, the current task from working memory), balanced across tasks."""
        tf = self.ctx.train_transform
        datasets = []
        for t in self.ltm.task_ids():
            if t != task.index:
                old = CueStore()
                old.extend(self.ltm, np.flatnonzero(self.ltm.tasks == t))
                datasets.append(self.recalled(old, tf))
        datasets.append(self.recalled(wm, tf))
        return self.engine.fit(self.model, self.balanced_loader(datasets), epochs=self.params["sleep_epochs"],
                               optimizer=self.params["sleep_optimizer"] or None, desc=f"task {task.index + 1} sleep")

    # ------------------------------------------------------------------ lifecycle
    def train_task(self, task):
        wm = self.encode_task(task)
        wake = self.wake(task, wm)
        per_class = self.transfer_to_long_term(task, wm)
        sleep = self.sleep(task, wm) if self.params["sleep"] else {"steps": 0, "samples": 0, "mean_loss": None}
        self.history[-1].update(wake_steps=wake["steps"], sleep_steps=sleep["steps"], ltm_cues_per_class=per_class,
                                ltm_cues=len(self.ltm), ltm_bytes=self.ltm.nbytes())
        # working memory goes out of scope here: only long-term memory is kept

    def memory(self):
        dec, tab = self.fixed_nbytes()
        return super().memory().add("cues", self.ltm.nbytes()).add("decoders", dec).add("entropy_tables", tab)

    def info(self) -> dict:
        return {"ablations": {k: self.params[k] for k in ABLATIONS},
                "cue_metadata": (f"per task {TASK_HEADER.size} B (task id, latent H, W, count); per cue "
                                 f"{CUE_HEADER.size} B (label int16, length uint16, crc32)"),
                "per_task": self.history}
