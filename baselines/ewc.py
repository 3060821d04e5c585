"""``ewc``: online EWC (Schwarz et al., 2018, "Progress & Compress"), diagonal Fisher.

After task t the diagonal Fisher ``F_t`` is estimated at the trained weights ``theta*_t``, with
labels drawn from the model's own predictive distribution (the true Fisher, not the empirical
one) and per-sample gradients. The running Fisher is ``F~_t = gamma * F~_{t-1} + F_t`` and the
penalty while learning task t+1 is ``lambda * sum_i F~_t,i (theta_i - theta*_t,i)^2``: Mammoth's
convention (``models/ewc_on.py``: ``loss + e_lambda * penalty`` with ``penalty = sum F (theta -
theta*)^2``), without the paper's ``1/2``, so that Mammoth's published ``e_lambda`` values apply
unchanged. Output rows added to the head after the anchor have no Fisher yet and are free.

Stability: the penalty's curvature on weight ``i`` is ``2 * lambda * F~_i``; with SGD at learning
rate ``lr`` it is stable only while ``lr * 2 * lambda * F~_i`` stays below 2, and a few weights
with a huge Fisher otherwise blow training up (seen on MNIST). ``max_stiffness`` caps
``lr * 2 * lambda * F~_i`` (default 1, null: no cap), which leaves every other weight's penalty
unchanged.

Memory: the running Fisher and the anchor weights (float32), kind ``other``. No exemplars."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from braincl.learner import Learner
from braincl.memory import BudgetExceeded, tensor_nbytes
from braincl.registry import METHODS


@METHODS.register("ewc")
class OnlineEWC(Learner):
    needs_budget = False  # nothing is sized by the budget; when one is given, it must hold the Fisher

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}

    def state_nbytes(self, num_classes: int) -> int:
        """Bytes of Fisher + anchor once the head has ``num_classes`` outputs (float32 each)."""
        head = self.model.head
        head_now = sum(p.numel() for p in head.parameters())
        n = sum(p.numel() for p in self.model.parameters()) - head_now + num_classes * (head.in_features + 1)
        return 2 * 4 * n

    def setup(self):
        need = self.state_nbytes(self.ctx.num_classes)
        if self.budget.total is not None and self.budget.total < need:
            raise BudgetExceeded(
                f"ewc: memory.budget={self.budget.total} bytes cannot hold the diagonal Fisher and anchor "
                f"weights of this model ({need} bytes in float32 at {self.ctx.num_classes} classes); "
                f"give at least {need} bytes or use a smaller model")

    def penalty(self) -> torch.Tensor:
        """``sum F~ (theta - theta*)^2`` over the anchored entries (without lambda; Mammoth's form)."""
        total = torch.zeros((), device=next(self.model.parameters()).device)
        for name, p in self.model.named_parameters():
            if name in self.anchor:
                anchor = self.anchor[name]
                total = total + (self.fisher[name] * (p[: anchor.shape[0]] - anchor) ** 2).sum()
        return total

    def train_task(self, task):
        def step(batch, _):
            x, y = batch[0], batch[1]
            loss = F.cross_entropy(self.model(x), y)
            return loss + self.params["lambda"] * self.penalty() if self.anchor else loss

        self.engine.fit(self.model, self.train_loader(task), step=step, desc=f"task {task.index + 1} (ewc)")

    def diagonal_fisher(self, task) -> dict[str, torch.Tensor]:
        """Mean over samples of the squared per-sample gradient of log p(y|x), y ~ p(.|x)."""
        model = self.model
        model.eval()  # batch-norm statistics fixed: the Fisher of the model that will be evaluated
        params = {n: p.detach() for n, p in model.named_parameters()}
        buffers = {n: b.detach() for n, b in model.named_buffers()}

        def nll(p, x, y):
            return F.cross_entropy(functional_call(model, (p, buffers), (x[None],)), y[None])

        per_sample = vmap(grad(nll), in_dims=(None, 0, 0))
        loader = self.engine.loader(task.train.dataset(self.ctx.eval_transform), shuffle=True,
                                    batch_size=self.params["fisher_batch_size"])
        fisher = {n: torch.zeros_like(p) for n, p in params.items()}
        seen, limit = 0, self.params["fisher_samples"] or len(task.train)
        for batch in loader:
            x = self.engine.to_device(batch)[0][: limit - seen]
            with torch.no_grad():
                y = torch.distributions.Categorical(logits=model(x).float()).sample()
            for n, g in per_sample(params, x, y).items():
                fisher[n] += g.pow(2).sum(0)
            seen += len(x)
            if seen >= limit:
                break
        return {n: f / seen for n, f in fisher.items()}

    def end_task(self, task):
        with self.engine.compute.count("memory", "fisher"):
            new = self.diagonal_fisher(task)
        gamma = self.params["gamma"]
        for name, f in new.items():
            old = self.fisher.get(name)
            if old is not None:  # the head grew: old rows decay, new rows start from zero
                f[: old.shape[0]] += gamma * old
            self.fisher[name] = f
        if self.params["max_stiffness"] is not None:
            cap = self.params["max_stiffness"] / (2 * self.params["lambda"] * self.ctx.cfg["train"]["optimizer"]["lr"])
            for f in self.fisher.values():
                f.clamp_(max=cap)
        self.anchor = {n: p.detach().clone() for n, p in self.model.named_parameters()}

    def memory(self):
        return super().memory().add("other", tensor_nbytes(*self.fisher.values(), *self.anchor.values()))

    def info(self):
        return {"fisher_anchor_bytes": tensor_nbytes(*self.fisher.values(), *self.anchor.values())}
