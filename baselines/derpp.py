"""``derpp``: DER++ (Buzzega et al., 2020): replay with stored logits.

Loss on each step: cross-entropy on the new batch, plus ``alpha * MSE(logits(x'), z')`` on one
replay half-batch (``z'``: the logits stored with the exemplar) and ``beta * CE(logits(x''), y'')``
on the other half, drawn from the engine's replay stream.

Buffer policy at equal bytes: the class-balanced raw buffer of ``er`` (random selection) instead of
the paper's reservoir, filled at the end of each task with the logits the trained model gives the
exemplar then (eval mode, un-augmented image). Those logits cover the classes seen at insertion;
they are stored as float16, padded with zeros to the scenario's final number of classes, plus an
int16 count of valid logits, so every exemplar costs a fixed, exactly charged
``2 * num_classes + 2`` bytes beside its image and label."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from braincl.distill import logit_matching_loss
from braincl.methods.er import ReplayLearner
from braincl.registry import METHODS

LOGIT_DTYPE = torch.float16
COUNT_DTYPE = torch.int16


@METHODS.register("derpp")
class DERpp(ReplayLearner):
    @property
    def extra_bytes_per_exemplar(self) -> int:
        logit = torch.tensor([], dtype=LOGIT_DTYPE).element_size()
        count = torch.tensor([], dtype=COUNT_DTYPE).element_size()
        return logit * self.ctx.num_classes + count

    def step(self, batch, replay):
        x, y = batch[0], batch[1]
        loss = F.cross_entropy(self.model(x), y)
        if replay is not None:
            # extras come in sorted key order: logits, n_logits
            rx, ry, rz, rn = replay
            out, half = self.model(rx), len(rx) // 2  # the CE half is never empty
            loss = loss + self.params["alpha"] * logit_matching_loss(out[:half], rz[:half], rn[:half])
            loss = loss + self.params["beta"] * F.cross_entropy(out[half:], ry[half:])
        return loss

    def train_task(self, task):
        replay = None
        if len(self.buffer):
            # two independent replay minibatches per step, as in the paper: one for each term
            replay = self.engine.loader(self.buffer_dataset(), shuffle=True,
                                        batch_size=2 * self.params["minibatch_size"])
        self.engine.fit(self.model, self.train_loader(task), step=self.step, replay=replay,
                        desc=f"task {task.index + 1} (der++)")

    @torch.no_grad()
    def logits_extras(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The model's logits for ``images`` now, padded to the final class count."""
        self.eval_mode()
        x = torch.stack([self.ctx.eval_transform(img) for img in images]).to(self.engine.device)
        logits = self.model(x).float().cpu() if len(x) else torch.zeros(0, self.model.num_classes)
        padded = torch.zeros(len(images), self.ctx.num_classes, dtype=LOGIT_DTYPE)
        padded[:, : logits.shape[1]] = logits.to(LOGIT_DTYPE)
        return {"logits": padded, "n_logits": torch.full((len(images),), logits.shape[1], dtype=COUNT_DTYPE)}

    def end_task(self, task):
        self.update_buffer(task, self.params["selection"], extras_fn=self.logits_extras)
