"""The shared distillation losses: zero exactly when the student matches, the gradients of the
cross-entropy forms the papers write, and DER's masking of logits that did not exist yet."""

import pytest
import torch
import torch.nn.functional as F

from braincl.distill import binary_kd_loss, kd_loss, logit_matching_loss


@pytest.fixture
def logits():
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)


def test_kd_loss_is_zero_only_at_the_teacher(logits):
    s, t = logits
    assert kd_loss(t.clone(), t, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    assert kd_loss(s, t, 2.0).item() > 1e-3


def test_kd_loss_has_the_gradient_of_soft_target_cross_entropy(logits):
    s, t = logits
    T = 3.0
    a = s.clone().requires_grad_(True)
    kd_loss(a, t, T).backward()
    b = s.clone().requires_grad_(True)
    soft_ce = -(F.softmax(t / T, 1) * F.log_softmax(b / T, 1)).sum(1).mean() * T ** 2
    soft_ce.backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_kd_loss_rejects_mismatched_shapes(logits):
    s, t = logits
    with pytest.raises(ValueError, match="same shape"):
        kd_loss(s[:, :3], t)


def test_binary_kd_is_zero_at_the_teacher_and_has_the_bce_gradient(logits):
    s, t = logits
    assert binary_kd_loss(t.clone(), t).item() == pytest.approx(0.0, abs=1e-6)
    assert binary_kd_loss(s, t).item() > 1e-3
    a = s.clone().requires_grad_(True)
    binary_kd_loss(a, t).backward()
    b = s.clone().requires_grad_(True)
    F.binary_cross_entropy_with_logits(b, torch.sigmoid(t), reduction="sum").div(len(b)).backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_logit_matching_counts_only_logits_stored_at_insertion():
    current = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    stored = torch.tensor([[0.0, 2.0, 99.0], [1.0, 0.0, 3.0]])
    valid = torch.tensor([2, 3])
    # errors over valid entries: (1, 0) and (0, 2, 0) -> (1 + 4) / 5 entries
    assert logit_matching_loss(current, stored, valid).item() == pytest.approx(1.0)
    stored[0, 2] = -99.0  # padding of the first sample: must not matter
    assert logit_matching_loss(current, stored, valid).item() == pytest.approx(1.0)
