"""``braincl``: semi-parametric memory with wake-sleep consolidation (BrainCL, arXiv 2504.14727).

Per task (the paper's critical path, Sec. "Method"):
1. Memory encoding: train the task's codec (``braincl.codec``), freeze its completion network and
   entropy tables, encode every training image into a cue (working memory), discard ``g_a``.
2. Wake: the backbone is frozen (kept in eval mode, so its weights and BN statistics stay
   bit-identical); only the classifier learns, from the recalled current-task samples, with a
   cross-entropy over the current task's classes (``wake_ce_scope: new``; ``seen``: over every
   class seen so far, which pushes the old logits down on data that holds none of them).
3. Sleep: per class, select the cues whose features lie closest to the class mean and move them
   to long-term memory (as many per class as the byte budget allows, class-balanced, evicting the
   least representative old cues); then fine-tune the whole model on recalled samples of every
   task, with batches balanced across tasks. Afterwards only long-term memory is kept.

Charged memory: long-term cues with their metadata (``cues``), every task's completion network at
its stored precision (``decoders``) and entropy tables in their packed form (``entropy_tables``,
``braincl.codec.pack_tables``). The cues' CRC32s are reported apart (``integrity``), not charged.
Working memory exists only during its own task and is dropped before the runner charges the memory.

Ablations (method params, recorded in the config and in ``info()``): ``sleep``, ``wake_ce_scope``, ``sleep_data``
(``current_task``: sleep fine-tunes the whole model for the same number of draws on the current
task's working memory only, so the backbone still learns the task but nothing is replayed: the
paper's consolidation ablation), ``freeze_backbone_in_wake`` (with ``equal_backbone_updates``: a wake
that trains the backbone uses up that many of sleep's draws, so the ablation back-propagates no
more samples through the backbone than full BrainCL), ``completion`` (``per_task`` or ``shared``: one ``g_s`` retrained on
every task; each task keeps its own entropy tables, so its old strings still decode to the exact
same latents, but those latents then pass through the drifted shared decoder), ``selection``,
``lambda`` (with ``lambda_convention``: ``compressai`` or the paper's ``rate``), ``N``/``M``,
``decoder_precision`` and ``memory_format``.

Controls (``memory_format``): ``cues`` is BrainCL. ``raw`` keeps raw uint8 exemplars (+ int16
label) and ``jpeg`` keeps them as abbreviated JPEG streams with tables shared per quality
(``braincl.memory.jpeg``: ``jpeg_replay``'s encoder and quality rule; stream length + 7 B metadata, plus the
tables of the qualities kept), with no codec; wake, selection, the class-balanced budget fit
and sleep are unchanged. They separate what the memory holds from how BrainCL rehearses.

Training length (the suite's equal-training rule, docs/equal_training.md): wake and sleep run
``train.epochs`` unless ``wake_epochs`` / ``sleep_epochs`` say otherwise, and a sleep epoch draws
what ``er`` draws per epoch (its current batches, plus as many buffer samples once old tasks exist)
in ``er``'s effective batches (``train.batch_size``, twice that once old tasks exist). Sleep
therefore takes ``er``'s optimizer steps and back-propagates through the backbone exactly as many
samples as ``er`` does; the frozen-backbone wake adds head-only steps and no backbone update.
Codec training is the memory's encoding cost; it is counted apart (compute phase ``codec``)."""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ..data.base import ImageDataset
from ..learner import Learner
from ..memory import BudgetExceeded
from ..memory.cues import CUE_CRC, CUE_HEADER, TASK_HEADER, CueStore
from ..memory.exemplars import LABEL_DTYPE
from ..memory.selection import select
from ..registry import METHODS

ABLATIONS = ("sleep", "sleep_data", "freeze_backbone_in_wake", "wake_ce_scope", "equal_backbone_updates", "completion",
             "selection", "lambda", "lambda_convention", "N", "M", "depth", "decoder_precision", "memory_format")
LABEL_BYTES = torch.tensor([], dtype=LABEL_DTYPE).element_size()


class ExemplarStore:
    """Working and long-term memory of the ``raw`` and ``jpeg`` controls, with ``CueStore``'s
    interface (selection order within a class, class-balanced cuts, exact bytes). Items are uint8
    images (``raw``: C*H*W bytes + an int16 label) or JPEG files (``jpeg``: file length + label,
    length and quality, as ``jpeg_replay`` charges them)."""

    def __init__(self, fmt: str, channels: int = 1):
        self.format, self.channels = fmt, channels
        self.items: list = []  # raw: uint8 CHW tensors; jpeg: (quality, abbreviated stream)
        self.labels = np.zeros(0, dtype=np.int16)
        self.tasks = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.items)

    def item_nbytes(self, item) -> int:
        if self.format == "raw":
            return int(item.numel()) + LABEL_BYTES
        from ..memory.jpeg import METADATA_BYTES

        return len(item[1]) + METADATA_BYTES

    def tables_nbytes(self) -> int:
        """The shared JPEG tables of the qualities in the store (``jpeg``; 0 for ``raw``)."""
        if self.format == "raw":
            return 0
        from ..memory.jpeg import tables_nbytes

        return tables_nbytes({q for q, _ in self.items}, self.channels)

    def nbytes(self) -> int:
        return sum(self.item_nbytes(x) for x in self.items)

    def nbytes_if_kept(self, index) -> int:
        return sum(self.item_nbytes(self.items[i]) for i in np.asarray(index, dtype=np.int64))

    def mean_cue_bytes(self) -> float:
        return float(np.mean([self.item_nbytes(x) for x in self.items])) if self.items else 0.0

    def task_ids(self) -> list[int]:
        return sorted(set(self.tasks.tolist()))

    def per_class_count(self) -> dict[int, int]:
        values, counts = np.unique(self.labels, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts)}

    def add(self, task: int, items: list, labels) -> None:
        self.items.extend(items)
        self.labels = np.concatenate([self.labels, np.asarray(labels).astype(np.int16)])
        self.tasks = np.concatenate([self.tasks, np.full(len(items), task, dtype=np.int64)])

    def extend(self, other: "ExemplarStore", index=None) -> None:
        index = np.arange(len(other)) if index is None else np.asarray(index, dtype=np.int64)
        self.items.extend(other.items[i] for i in index)
        self.labels = np.concatenate([self.labels, other.labels[index]])
        self.tasks = np.concatenate([self.tasks, other.tasks[index]])

    def keep(self, index) -> None:
        index = np.asarray(index, dtype=np.int64)
        self.items = [self.items[i] for i in index]
        self.labels, self.tasks = self.labels[index], self.tasks[index]

    def first_per_class(self, per_class: int) -> np.ndarray:
        keep = np.zeros(len(self), dtype=bool)
        for cls in np.unique(self.labels):
            keep[np.flatnonzero(self.labels == cls)[:per_class]] = True
        return np.flatnonzero(keep)

    def reduce_per_class(self, per_class: int) -> None:
        self.keep(self.first_per_class(per_class))

    def recall(self, decoders=None, batch_size=None, device=None):
        """(uint8 images, int64 labels) in store order; ``decoders`` is unused (no codec)."""
        if not self.items:
            return torch.zeros((0,), dtype=torch.uint8), np.zeros(0, dtype=np.int64)
        if self.format == "raw":
            images = torch.stack(self.items)
        else:
            from ..memory.jpeg import decode_jpeg, jpeg_tables

            images = torch.stack([decode_jpeg(x, jpeg_tables(q, self.channels)) for q, x in self.items])
        return images, self.labels.astype(np.int64)


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
        self.ltm = self.new_store()           # long-term memory: kept and charged
        self.jpeg_quality: dict[int, int] = {}  # memory_format=jpeg: class -> quality
        self.decoders: list = []              # one CompletionNet per task (g_s shared when completion=shared)
        self.history: list[dict] = []         # per-task statistics for info()

    def new_store(self):
        return CueStore() if self.params["memory_format"] == "cues" else ExemplarStore(self.params["memory_format"], self.ctx.image_shape[0])

    # ------------------------------------------------------------------ budget
    def fixed_nbytes(self) -> tuple[int, int]:
        """(decoder bytes, table bytes) that long-term memory must leave room for: every task's
        completion network (a shared g_s counts once) and entropy tables, or, for the ``jpeg``
        control, the shared JPEG tables of every candidate quality."""
        unique = {id(d.g_s): d.decoder_nbytes() for d in self.decoders}
        return sum(unique.values()), sum(d.tables_nbytes() for d in self.decoders) + self.jpeg_tables_reserve()

    def jpeg_tables_reserve(self) -> int:
        if self.params["memory_format"] != "jpeg":
            return 0
        from ..memory.jpeg import tables_nbytes

        return tables_nbytes(self.params["jpeg_qualities"], self.ctx.image_shape[0])

    def setup(self):
        """Refuse a budget that cannot hold what the run will charge at the least: the completion
        networks of all ``num_tasks`` tasks, their entropy tables at the largest size
        ``max_cdf_length`` allows, and one cue per class at its in-table maximum (2 B per latent
        symbol). Each task re-checks with the exact sizes. ``raw``: one exemplar per class."""
        from ..codec import CompletionNet, build_codec, cue_nbytes_bound, tables_nbytes_bound

        p, ctx = self.params, self.ctx
        if p["memory_format"] != "cues":
            if p["memory_format"] == "raw":
                per = int(np.prod(ctx.image_shape)) + LABEL_BYTES
            else:
                from ..memory.jpeg import worst_case_nbytes

                per = worst_case_nbytes(ctx.image_shape, min(p["jpeg_qualities"]), abbreviated=True)
            need = per * ctx.num_classes + self.jpeg_tables_reserve()
            if self.budget.total is not None and self.budget.total < need:
                raise BudgetExceeded(f"braincl (memory_format={p['memory_format']}): memory.budget={self.budget.total} "
                                     f"bytes cannot hold one exemplar of each of the {ctx.num_classes} classes (up to "
                                     f"{per} bytes each, plus {self.jpeg_tables_reserve()} bytes of JPEG tables); "
                                     f"give at least {need} bytes")
            return
        codec = build_codec(ctx.image_shape[0], p["N"], p["M"], depth=p["depth"])
        dec = CompletionNet(codec.g_s, codec.entropy_bottleneck, ctx.image_shape[1:],
                            p["decoder_precision"]).decoder_nbytes()
        tab = tables_nbytes_bound(p["M"], p["max_cdf_length"])
        latent = [-(-s // codec.downsampling) for s in ctx.image_shape[1:]]
        cue = CUE_HEADER.size + cue_nbytes_bound(latent, p["M"])
        decoders = dec if p["completion"] == "shared" else dec * ctx.num_tasks
        cues = ctx.num_tasks * TASK_HEADER.size + ctx.num_classes * cue
        need = decoders + tab * ctx.num_tasks + cues
        self.minimum_budget = need
        if self.budget.total is not None and self.budget.total < need:
            raise BudgetExceeded(
                f"braincl: memory.budget={self.budget.total} bytes cannot hold the completion networks of "
                f"{ctx.num_tasks} tasks ({dec} bytes each at {p['decoder_precision']}, N={p['N']}, M={p['M']}, "
                f"completion={p['completion']}: {decoders} bytes) plus their entropy tables (up to {tab} bytes per "
                f"task at max_cdf_length={p['max_cdf_length']}) and one cue per class (up to {cue} bytes each, "
                f"{cues} bytes with task headers). Give at least {need} bytes, or use a smaller codec "
                "(method.params.N / M), decoder_precision=fp16 or completion=shared")

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

        from ..memory.spill import read_images

        p, device = self.params, self.engine.device
        # Chunked into one array (RAM, or a memory-mapped file where the job's memory would not hold it).
        images = read_images(task.train.source, task.train.indices, f"task {task.index + 1} training images")
        if p["memory_format"] != "cues":
            return self.store_task(task, images)
        shared = self.decoders[0].g_s if (p["completion"] == "shared" and self.decoders) else None
        if shared is not None:
            shared.requires_grad_(True)  # the shared decoder keeps learning; old tasks decode through it
        codec = build_codec(self.ctx.image_shape[0], p["N"], p["M"], g_s=shared, depth=p["depth"])
        stats = train_codec(codec, images, lmbda=p["lambda"], epochs=p["codec_epochs"], steps=p["codec_steps"],
                            batch_size=p["codec_batch_size"], lr=p["codec_lr"], aux_lr=p["codec_aux_lr"],
                            device=device, progress=self.engine.progress, desc=f"task {task.index + 1} codec",
                            seed=self.ctx.seed * 1000 + task.index, compute=self.engine.compute,
                            count_flops=self.engine.count_flops, lambda_convention=p["lambda_convention"])
        completion = freeze(codec, self.ctx.image_shape[1:], p["decoder_precision"], p["max_cdf_length"])
        with self.engine.compute.count("codec", "encode"):
            strings, shape = encode(codec, images, p["recall_batch_size"], device)
        del codec  # g_a is not stored and not charged
        self.decoders.append(completion)
        wm = CueStore()
        wm.add(task.index, strings, task.train.labels, shape)
        self.history.append({"task": task.index, "codec": stats, "working_cues": len(wm),
                             "mean_cue_bytes": wm.mean_cue_bytes(), "latent_shape": list(shape),
                             "decoder_bytes": completion.decoder_nbytes(), "table_bytes": completion.tables_nbytes()})
        return wm

    def store_task(self, task, images: torch.Tensor) -> ExemplarStore:
        """The controls' working memory: every training image, raw or as a JPEG file at its class's
        quality (``braincl.memory.jpeg.choose_quality``, ``jpeg_replay``'s rule: the highest quality at which ``jpeg_target_ratio``
        times the raw exemplars a class could keep in its final share of the budget fit there)."""
        fmt, labels = self.params["memory_format"], task.train.labels
        wm = ExemplarStore(fmt, self.ctx.image_shape[0])
        if fmt == "raw":
            wm.add(task.index, list(images), labels)
        else:
            from ..memory.jpeg import choose_quality, encode_jpeg

            qualities, items = self.params["jpeg_qualities"], [None] * len(images)
            raw = int(np.prod(self.ctx.image_shape)) + LABEL_BYTES
            for cls in task.classes:
                idx = np.flatnonzero(labels == cls)
                if self.budget.total is None:
                    q = max(qualities)
                else:
                    share = (self.budget.total - self.jpeg_tables_reserve()) // self.ctx.num_classes
                    target = max(1, int(np.ceil(self.params["jpeg_target_ratio"] * (share // raw))))
                    q = choose_quality(images[torch.as_tensor(idx)], qualities, target, share, abbreviated=True)
                self.jpeg_quality[int(cls)] = q
                for i in idx:
                    items[i] = (q, encode_jpeg(images[i], q, abbreviated=True))
            wm.add(task.index, items, labels)
        self.history.append({"task": task.index, "working_items": len(wm), "mean_item_bytes": wm.mean_cue_bytes()})
        return wm

    def recall(self, store, phase: str):
        """(uint8 images, labels) of every item of ``store``, its decoding counted under ``phase``."""
        with self.engine.compute.count(phase, "recall"):
            return store.recall(self.decoders, self.params["recall_batch_size"], self.engine.device)

    def recalled(self, store: CueStore, transform, phase: str) -> torch.utils.data.Dataset:
        """Recalled samples of ``store`` as a Dataset: decoded once into uint8 (``cache_recall``, and
        always for the raw/jpeg controls), or decoded item by item, in which case the phase that
        draws them counts each decode (``recall_flops_per_cue``)."""
        if self.params["cache_recall"] or isinstance(store, ExemplarStore):
            images, labels = self.recall(store, phase)
            return ImageDataset(lambda i: images[i], labels, transform)
        decoders = self.decoders if self.engine.device.type == "cpu" else [copy.deepcopy(d).to("cpu") for d in self.decoders]
        return RecallDataset(store, decoders, transform)

    def recall_flops_per_cue(self, store) -> int:
        """FLOPs of decoding one cue of ``store`` (its first), measured: with ``cache_recall: false``
        every drawn sample is decoded anew, so a phase's recall FLOPs are this times its samples.
        Every task's completion network has the same layout and latent shape, so one cue speaks
        for all (each decode is the same passes on the same shapes)."""
        from ..compute import measure

        if isinstance(store, ExemplarStore) or self.params["cache_recall"] or not len(store) or not self.engine.count_flops:
            return 0
        task = int(store.tasks[0])
        with measure("recall") as split:
            self.decoders[task].recall(store.verified([0]), store.shapes[task], 1)
        return sum(split.values())

    # ------------------------------------------------------------------ phases
    def wake(self, task, wm: CueStore) -> dict:
        """Learn the new classes from working memory. With the backbone frozen it stays in eval mode
        (BN statistics untouched) and only the classifier's parameters reach the optimizer."""
        model = self.model
        loader = self.engine.loader(self.recalled(wm, self.ctx.train_transform, "wake"), shuffle=True, drop_last=True)
        kwargs = dict(epochs=self.params["wake_epochs"], optimizer=self.params["wake_optimizer"] or None,
                      desc=f"task {task.index + 1} wake", phase="wake", step=self.wake_step(task))
        if not self.params["freeze_backbone_in_wake"]:
            stats = self.engine.fit(model, loader, **kwargs)
        else:
            with frozen(model.backbone):
                stats = self.engine.fit(model, loader, params=model.head.parameters(), train_mode=model.eval, **kwargs)
        self.engine.compute.add("wake", flops={"recall": self.recall_flops_per_cue(wm) * stats["samples"]})
        return stats

    def wake_step(self, task):
        """The wake's loss. ``wake_ce_scope: new`` classifies over the current task's logits only (as
        ``lwf``'s ``ce_scope: new``, PyCIL): the wake sees no old class, and a cross-entropy over every
        seen class (``seen``) only pushes the old logits down, which the sleep must then undo."""
        if self.params["wake_ce_scope"] == "seen":
            return None  # the engine's cross-entropy over every output
        first = min(task.classes)

        def step(batch, _):
            return F.cross_entropy(self.model(batch[0])[:, first:], batch[1] - first)
        return step

    def transfer_to_long_term(self, task, wm: CueStore) -> int:
        """Sleep's first step: order each new class's cues by the selection strategy, move them to
        long-term memory, then evict down to what the budget holds. Returns cues per class kept."""
        strategy = self.params["selection"]
        images, labels = self.recall(wm, "memory")  # building long-term memory: counted as encoding
        feats = np.zeros((len(wm), 1))
        if strategy != "random":
            with self.engine.compute.count("memory", "selection", self.model.backbone):
                feats = self.selection_features(images)
        for cls in task.classes:
            idx = np.flatnonzero(labels == cls)
            order = select(strategy, feats[idx], len(idx), seed=self.ctx.seed * 1000 + cls)
            self.ltm.extend(wm, idx[order])
        return self.fit_long_term_memory()

    def sleep_batch_size(self, has_old: bool) -> int:
        """``er``'s effective batch: its current batch (``train.batch_size``), plus a buffer batch of
        the same size beside it once old tasks exist. Sleep steps are then ``er``'s steps too."""
        return int(self.engine.cfg["batch_size"]) * (2 if has_old else 1)

    def sleep_draws(self, current: int, has_old: bool) -> int:
        """Samples per sleep epoch. Default: what ``er`` draws per epoch, i.e. its whole current
        batches (``floor(N / B) * B``), and a buffer batch beside each of them once old tasks exist."""
        if self.params["sleep_epoch_size"] is not None:
            return int(self.params["sleep_epoch_size"])
        return max(1, current // int(self.engine.cfg["batch_size"])) * self.sleep_batch_size(has_old)

    def balanced_loader(self, datasets: list, draws: int, batch_size: int | None = None) -> DataLoader:
        """``draws`` samples per epoch in batches of ``batch_size``, with replacement, so that every
        task contributes equally in expectation; through the engine, so each sample gets its
        augmentation seed."""
        data = torch.utils.data.ConcatDataset(datasets)
        weights = torch.cat([torch.full((len(d),), 1.0 / len(d), dtype=torch.double) for d in datasets])
        return self.engine.loader(data, shuffle=True, drop_last=True, weights=weights, num_samples=draws,
                                  batch_size=batch_size)

    def draws_left_after_wake(self, draws: int, wake_backbone_samples: int, batch: int) -> int:
        """``equal_backbone_updates``: sleep's draws per epoch less the wake's backbone samples
        (spread over sleep's epochs, rounded up), cut to whole sleep batches of ``batch``, so that wake
        and sleep together back-propagate no more samples through the backbone than sleep alone would."""
        epochs = self.params["sleep_epochs"] if self.params["sleep_epochs"] is not None else self.engine.cfg["epochs"]
        left = draws - (-(-int(wake_backbone_samples) // max(1, int(epochs))))
        return max(0, left // batch * batch)

    def sleep(self, task, wm: CueStore, wake_backbone_samples: int = 0) -> dict:
        """Consolidate: fine-tune the whole model on recalled samples of every task (old tasks from
        long-term memory, the current task from working memory), balanced across tasks.
        ``sleep_data: current_task`` trains on working memory alone, for the same number of draws."""
        tf = self.ctx.train_transform
        datasets = []
        old_tasks = [t for t in self.ltm.task_ids() if t != task.index]
        for t in old_tasks if self.params["sleep_data"] == "replay" else ():
            old = self.new_store()
            old.extend(self.ltm, np.flatnonzero(self.ltm.tasks == t))
            datasets.append(self.recalled(old, tf, "sleep"))
        datasets.append(self.recalled(wm, tf, "sleep"))
        # current_task draws what replay would, in the same batches: only the data differ
        has_old = bool(old_tasks)
        batch = self.sleep_batch_size(has_old)
        draws = self.sleep_draws(len(wm), has_old)
        if self.params["equal_backbone_updates"] and wake_backbone_samples:
            draws = self.draws_left_after_wake(draws, wake_backbone_samples, batch)
            if draws == 0:  # the wake already used all of sleep's backbone samples
                return {"steps": 0, "samples": 0, "mean_loss": None}
        loader = self.balanced_loader(datasets, draws, batch)
        stats = self.engine.fit(self.model, loader, epochs=self.params["sleep_epochs"],
                                optimizer=self.params["sleep_optimizer"] or None, desc=f"task {task.index + 1} sleep",
                                phase="sleep")
        self.engine.compute.add("sleep", flops={"recall": self.recall_flops_per_cue(wm) * stats["samples"]})
        return stats

    # ------------------------------------------------------------------ lifecycle
    def train_task(self, task):
        wm = self.encode_task(task)
        wake = self.wake(task, wm)
        per_class = self.transfer_to_long_term(task, wm)
        wake_backbone = 0 if self.params["freeze_backbone_in_wake"] else wake["samples"]
        sleep = self.sleep(task, wm, wake_backbone) if self.params["sleep"] else {"steps": 0, "samples": 0,
                                                                                    "mean_loss": None}
        self.history[-1].update(wake_steps=wake["steps"], sleep_steps=sleep["steps"], ltm_cues_per_class=per_class,
                                ltm_cues=len(self.ltm), ltm_bytes=self.ltm.nbytes())
        # working memory goes out of scope here: only long-term memory is kept

    def memory(self):
        dec, tab = self.fixed_nbytes()
        if isinstance(self.ltm, ExemplarStore):  # the controls: no codec; JPEG tables of the qualities kept
            tab = self.ltm.tables_nbytes()
        out = super().memory().add("cues", self.ltm.nbytes()).add("decoders", dec).add("entropy_tables", tab)
        if isinstance(self.ltm, CueStore):  # the CRC32s: an integrity cost, reported and never charged
            out.add("integrity", self.ltm.integrity_nbytes())
        return out

    def info(self) -> dict:
        return {"ablations": {k: self.params[k] for k in ABLATIONS},
                "memory_format": self.params["memory_format"],
                "jpeg_quality": {str(c): q for c, q in self.jpeg_quality.items()},
                "cue_metadata": (f"per task {TASK_HEADER.size} B (task id, latent H, W, count); per cue "
                                 f"{CUE_HEADER.size} B (label int16, length uint16); a CRC32 per cue "
                                 f"({CUE_CRC.size} B) reported apart under 'integrity', not charged"),
                "per_task": self.history}
