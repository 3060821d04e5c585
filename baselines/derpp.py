"""``der`` and ``derpp``: Dark Experience Replay (Buzzega et al., 2020), replay with stored logits.

Loss on each step: cross-entropy on the new batch, plus ``alpha * MSE(logits(x'), z')`` on a replay
minibatch (``z'``: the logits stored with the exemplar); DER++ adds ``beta * CE(logits(x''), y'')``
on a second, independently drawn replay minibatch (Mammoth ``models/der.py``, ``models/derpp.py``).
``der`` is DER++ without that term. Each minibatch has ``replay_batch_size`` samples (null:
``train.batch_size``), and the replay options of ``er`` apply (``braincl/methods/er.py``).

Stored logits: float16, one per output of the scenario's final head. The outputs that did not
exist when a sample was stored are zero-padded, and the loss matches every output of the current
head, as Mammoth (fixed full-width head) and Avalanche do. Each exemplar therefore costs a fixed,
exactly charged ``2 * num_classes`` bytes beside its image and label.

- ``head: growing`` (default) adds each task's outputs when the task starts, like every method here;
  ``head: fixed`` has all of the scenario's outputs from the first task on, as Mammoth's backbones
  do: the cross-entropy then also pushes the not-yet-seen outputs down, and the stored logits carry
  those low values instead of zero padding. Evaluation still ranks only the classes seen so far.
  The Seq-MNIST reference needs ``fixed`` (the growing head costs DER 4-11 points there); at the
  default grid's shared schedule (SGD with momentum, 4 epochs) ``fixed`` leaves DER++ unable to fit
  new tasks, so ``growing`` stays the default (README, Controls).
- ``buffer: reservoir`` (the paper's): reservoir sampling over the stream; a sample's logits are
  those of the training step that saw it (train mode, as Mammoth stores ``outputs.data``).
- ``buffer: class_balanced`` (default at equal bytes): filled at the end of each task with the
  logits the trained model gives the exemplar then (eval mode, un-augmented image)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from braincl.distill import logit_matching_loss
from braincl.methods.er import ReplayLearner
from braincl.registry import METHODS

LOGIT_DTYPE = torch.float16


@METHODS.register("derpp")
class DERpp(ReplayLearner):
    replay_ce = True  # DER++'s second term

    @property
    def extra_bytes_per_exemplar(self) -> int:
        return torch.tensor([], dtype=LOGIT_DTYPE).element_size() * self.ctx.num_classes

    def padded(self, logits: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(len(logits), self.ctx.num_classes, dtype=LOGIT_DTYPE)
        out[:, : logits.shape[1]] = logits.detach().float().cpu().to(LOGIT_DTYPE)
        return out

    def head_growth(self, task) -> int:
        if self.params["head"] == "fixed":
            return self.ctx.num_classes - self.model.num_classes  # all at once, then nothing
        return super().head_growth(task)

    def step(self, task):
        def step(batch, replay):
            x, y = batch[0], batch[1]
            out = self.model(x)
            loss = F.cross_entropy(out, y)
            if replay is not None and len(replay[0]):
                rx, ry, rz = replay[:3]  # extras in sorted key order: logits
                rout = self.model(rx)
                half = len(rx) // 2 if self.replay_ce else len(rx)  # two equal draws for DER++
                loss = loss + self.params["alpha"] * logit_matching_loss(rout[:half], rz[:half])
                if self.replay_ce:
                    loss = loss + self.params["beta"] * F.cross_entropy(rout[half:], ry[half:])
            if self.option("buffer") == "reservoir":
                self.observe(task, batch, logits=self.padded(out))
            return loss
        return step

    def train_task(self, task):
        self.fit_replay(task, self.step(task), desc=f"task {task.index + 1} ({type(self).registered_name})",
                        draws=2 if self.replay_ce else 1)

    @torch.no_grad()
    def logits_extras(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The model's logits for ``images`` now, padded to the final class count."""
        self.eval_mode()
        x = torch.stack([self.ctx.eval_transform(img) for img in images]).to(self.engine.device)
        logits = self.model(x) if len(x) else torch.zeros(0, self.model.num_classes)
        return {"logits": self.padded(logits)}

    def end_task(self, task):
        self.update_buffer(task, self.params["selection"], extras_fn=self.logits_extras)


@METHODS.register("der")
class DER(DERpp):
    """DER: the logit-matching term only (Buzzega et al., 2020, Eq. 4)."""

    replay_ce = False
