"""The shared distillation losses: zero exactly when the student matches, the gradients of the
cross-entropy forms the reference implementations use (no T^2, as PyCIL, FACIL and Mammoth), and
DER's matching of every output against zero-padded stored logits."""

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


def test_kd_loss_has_the_gradient_of_the_reference_soft_target_cross_entropy(logits):
    """PyCIL's ``_KD_loss`` and Mammoth's ``modified_kl_div(smooth(softmax(t), T), smooth(softmax(s), T))``:
    ``-mean_batch sum p_t^T log p_s^T`` with no ``T^2``; ``t_squared=True`` is Hinton's form."""
    s, t = logits
    T = 3.0
    a = s.clone().requires_grad_(True)
    kd_loss(a, t, T).backward()
    b = s.clone().requires_grad_(True)
    soft_ce = -(F.softmax(t / T, 1) * F.log_softmax(b / T, 1)).sum(1).mean()
    soft_ce.backward()
    torch.testing.assert_close(a.grad, b.grad)
    c = s.clone().requires_grad_(True)
    kd_loss(c, t, T, t_squared=True).backward()
    torch.testing.assert_close(c.grad, b.grad * T ** 2)
    # Mammoth's smooth(): p ** (1/T) renormalised is softmax(logits / T)
    p = F.softmax(t, 1) ** (1 / T)
    torch.testing.assert_close(p / p.sum(1, keepdim=True), F.softmax(t / T, 1))


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


def test_logit_matching_matches_every_output_against_zero_padding():
    current = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    # the first sample was stored when only two outputs existed: its third target is the zero pad
    stored = torch.tensor([[0.0, 2.0, 0.0, 0.0], [1.0, 0.0, 3.0, 0.0]])
    # squared errors (1, 0, 9) and (0, 4, 0) over 6 entries; the fourth, not yet grown, output is ignored
    assert logit_matching_loss(current, stored).item() == pytest.approx(14 / 6)
    assert logit_matching_loss(current, stored).item() == pytest.approx(F.mse_loss(current, stored[:, :3]).item())
    with pytest.raises(ValueError, match="padded"):
        logit_matching_loss(current, stored[:, :2])
