"""``icarl``: iCaRL (Rebuffi et al., 2017): herding exemplars, distillation, nearest-mean-of-exemplars.

Training, on new data plus the buffer (``loss``):
- ``ce_kd`` (default, as FACIL's iCaRL): cross-entropy over all seen classes plus ``lambda`` times
  iCaRL's sigmoid distillation of the old outputs from the frozen previous model;
- ``bce`` (the iCaRL paper's Alg. 3, as Mammoth ``models/icarl.py``): one binary cross-entropy over
  every seen output, whose targets are the one-hot label on the current task's outputs and the
  previous model's sigmoid outputs on the old ones.
After each task the buffer is cut to the class-balanced quota and new classes are selected by herding.

Inference (``main``): the class whose exemplar-feature mean is nearest to the sample's feature
(``class_means``):
- ``normalized`` (default, the iCaRL paper and FACIL): the mean of L2-normalised features, compared
  with the sample's L2-normalised feature;
- ``running_halving`` (Mammoth ``models/icarl.py`` ``compute_class_means``): raw features, averaged
  per minibatch of ``train.batch_size`` exemplars in buffer order, each new batch mean averaged
  with the running one (so the last batch weighs one half), compared with the raw feature.
The means are a function of the buffer and the current model, recomputed whenever the model
changes; they are a cache, not stored memory. ``cnn`` records the network's own logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from braincl.distill import TeacherMixin, binary_kd_loss
from braincl.methods.er import ReplayLearner
from braincl.registry import METHODS


@METHODS.register("icarl")
class ICaRL(TeacherMixin, ReplayLearner):
    _transient = ReplayLearner._transient + ("class_means",)
    class_means: torch.Tensor | None = None

    def loss(self, x, y):
        logits = self.model(x)
        if self.params["loss"] == "bce":
            targets = F.one_hot(y, logits.shape[1]).float()
            if self.teacher is not None:
                old = self.num_old_classes
                targets[:, :old] = torch.sigmoid(self.teacher_logits(x).float())
            return F.binary_cross_entropy_with_logits(logits.float(), targets)
        loss = F.cross_entropy(logits, y)
        if self.teacher is not None:
            old = self.num_old_classes
            loss = loss + self.params["lambda"] * binary_kd_loss(logits[:, :old], self.teacher_logits(x))
        return loss

    def train_task(self, task):
        self.engine.fit(self.model, self.train_loader(task, extra=[self.buffer_dataset()]),
                        step=lambda batch, _: self.loss(*batch[:2]), desc=f"task {task.index + 1} (icarl)")

    def end_task(self, task):
        self.keep_teacher()  # first: a charged teacher (memory.charge_teacher) shrinks the quota
        self.update_buffer(task, self.params["selection"])
        self.class_means = None  # the model and the buffer changed

    # ------------------------------------------------------------------ nearest mean of exemplars
    @property
    def _normalized(self) -> bool:
        return self.params["class_means"] == "normalized"

    def compute_class_means(self) -> torch.Tensor:
        """Each class's exemplar-feature mean (rows by label; NaN if none), as ``class_means`` says."""
        with self.engine.compute.count("memory", "class_means", self.model.backbone):
            feats = torch.as_tensor(self.selection_features(self.buffer.images), dtype=torch.float32)
        labels = self.buffer.labels.long()
        means = torch.full((self.model.num_classes, feats.shape[1]), float("nan"))
        for cls in labels.unique().tolist():
            mine = feats[labels == cls]
            if self._normalized:
                means[cls] = F.normalize(F.normalize(mine, dim=1).mean(0), dim=0)
            else:
                means[cls] = running_halving_mean(mine, self.ctx.cfg["train"]["batch_size"])
        return means

    def nme(self, x: torch.Tensor) -> torch.Tensor:
        if self.class_means is None:
            self.class_means = self.compute_class_means()
        means = self.class_means.to(x.device)
        feats = self.features(x).float()
        feats = F.normalize(feats, dim=1) if self._normalized else feats
        dist = torch.cdist(feats, torch.nan_to_num(means, nan=0.0))
        dist[:, means.isnan().any(1)] = float("inf")  # a class without exemplars is never predicted
        return -dist

    def predictors(self):
        return {"main": self.nme, "cnn": self.predict}


def running_halving_mean(feats: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Mammoth's class mean: the mean of the first ``batch_size`` rows, then for each further batch
    the average of the running value and that batch's mean."""
    out = None
    for start in range(0, len(feats), batch_size):
        batch = feats[start:start + batch_size].mean(0)
        out = batch if out is None else (out + batch) / 2
    return out
