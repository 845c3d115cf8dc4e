"""The paper's losses against plain loops, and the known bugs of public implementations shown to differ."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ebgan_core.losses import (
    discriminator_bce,
    energy,
    generator_nonsaturating,
    margin_loss,
    pulling_away_term,
)


def seeded(*shape: int, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


def loop_energy(x, recon):
    return [
        math.sqrt(sum((float(r) - float(v)) ** 2 for r, v in zip(rr, xx, strict=True)))
        for rr, xx in zip(recon, x, strict=True)
    ]


def loop_pt(s):
    n = len(s)
    rows = [[float(v) for v in row] for row in s]
    norms = [math.sqrt(sum(v * v for v in row)) for row in rows]
    total = 0.0
    for i in range(n):
        for j in range(n):
            if i != j:
                dot = sum(a * b for a, b in zip(rows[i], rows[j], strict=True))
                total += (dot / (norms[i] * norms[j])) ** 2
    return total / (n * (n - 1))


def test_energy_is_per_sample_l2_norm():
    x, recon = seeded(8, 20, seed=1), seeded(8, 20, seed=2)
    assert energy(x, recon).tolist() == pytest.approx(loop_energy(x, recon), rel=1e-12)


def test_energy_gradient_is_the_unit_residual():
    """dD/d recon = (recon - x) / ||recon - x|| per sample (and its negative for x), against plain loops; 0 for a
    sample whose reconstruction is exact (a zero norm)."""
    x, recon = seeded(6, 9, seed=1), seeded(6, 9, seed=2)
    recon[2] = x[2]
    weights = seeded(6, seed=3)
    x.requires_grad_(True)
    recon.requires_grad_(True)
    (energy(x, recon) * weights).sum().backward()
    grad_x, grad_recon = x.grad, recon.grad
    x, recon = x.detach(), recon.detach()
    norms = loop_energy(x, recon)
    for n in range(6):
        for d in range(9):
            residual = float(recon[n, d]) - float(x[n, d])
            expected = 0.0 if norms[n] == 0 else float(weights[n]) * residual / norms[n]
            assert float(grad_recon[n, d]) == pytest.approx(expected, rel=1e-12, abs=1e-300)
            assert float(grad_x[n, d]) == pytest.approx(-expected, rel=1e-12, abs=1e-300)


def test_energy_matches_torch_norm_bit_for_bit():
    """The hand-written backward is torch.linalg.vector_norm's formula without its full-size mask: the same float32
    numbers, zero norms and NaN gradients included, over stacked [B, N, D] members."""
    x, recon = seeded(3, 5, 64).float(), seeded(3, 5, 64, seed=4).float()
    recon[1, 2] = x[1, 2]
    grad = seeded(3, 5, seed=5).float()
    grad[0, 1] = math.nan
    ours = [t.clone().requires_grad_(True) for t in (x, recon)]
    torch_ = [t.clone().requires_grad_(True) for t in (x, recon)]
    e_ours = energy(*ours)
    e_torch = torch.linalg.vector_norm(torch_[1] - torch_[0], ord=2, dim=-1)
    e_ours.backward(grad)
    e_torch.backward(grad)
    assert torch.equal(e_ours, e_torch)
    for a, b in zip(ours, torch_, strict=True):
        assert torch.equal(a.grad.isnan(), b.grad.isnan()) and a.grad.isnan().any()
        assert torch.equal(a.grad.nan_to_num(), b.grad.nan_to_num())
    assert not ours[1].grad[1, 2].any()


def test_energy_bug_batch_mean_mse_differs():
    x, recon = seeded(8, 20, seed=1), seeded(8, 20, seed=2)
    batch_mse = F.mse_loss(recon, x)  # the bug: one number, squared, averaged over pixels too
    assert energy(x, recon).mean().item() != pytest.approx(batch_mse.item(), rel=1e-2)


def test_margin_loss_is_per_sample_hinge():
    e_real, e_fake = seeded(10, seed=3).abs() * 5, seeded(10, seed=4).abs() * 10
    m = 10.0
    expected = sum(float(r) + max(0.0, m - float(f)) for r, f in zip(e_real, e_fake, strict=True)) / 10
    assert margin_loss(e_real, e_fake, m).item() == pytest.approx(expected, rel=1e-12)


def test_margin_loss_bug_hinge_on_batch_mean_differs():
    e_real = torch.tensor([1.0, 1.0, 1.0, 1.0])
    e_fake = torch.tensor([2.0, 4.0, 16.0, 18.0])  # mean 10: the batch-mean hinge is 0, per sample it is not
    buggy = e_real.mean() + F.relu(10.0 - e_fake.mean())
    assert margin_loss(e_real, e_fake, 10.0).item() == pytest.approx(1.0 + (8.0 + 6.0) / 4)
    assert buggy.item() == pytest.approx(1.0)


def test_pulling_away_term_matches_eq_14():
    s = seeded(7, 5, seed=5).abs()
    assert pulling_away_term(s).item() == pytest.approx(loop_pt(s), rel=1e-12)


def test_pulling_away_term_bugs_differ():
    s = seeded(7, 5, seed=6)
    n = s.shape[0]
    unit = s / s.norm(dim=1, keepdim=True)
    cosine = unit @ unit.T
    not_squared = (cosine.sum() - cosine.diagonal().sum()) / (n * (n - 1))
    scalar_norm = s / s.norm()  # one norm for the whole batch instead of per row
    gram = scalar_norm @ scalar_norm.T
    one_norm = ((gram**2).sum() - (gram.diagonal() ** 2).sum()) / (n * (n - 1))
    correct = pulling_away_term(s).item()
    assert correct != pytest.approx(not_squared.item(), rel=1e-2)
    assert correct != pytest.approx(one_norm.item(), rel=1e-2)


def test_pulling_away_term_bounds():
    same = torch.ones(5, 3, dtype=torch.float64)
    orthogonal = torch.eye(4, dtype=torch.float64)
    assert pulling_away_term(same).item() == pytest.approx(1.0)
    assert pulling_away_term(orthogonal).item() == pytest.approx(0.0)
    assert pulling_away_term(seeded(6, 3, seed=7) * 1e6).item() == pytest.approx(
        pulling_away_term(seeded(6, 3, seed=7)).item()
    )
    with pytest.raises(ValueError, match="at least 2 samples"):
        pulling_away_term(torch.ones(1, 3))


def test_gan_losses_match_binary_cross_entropy():
    real, fake = seeded(9, seed=8) * 3, seeded(9, seed=9) * 3
    expected_d = F.binary_cross_entropy(
        torch.sigmoid(real), torch.ones(9, dtype=torch.float64)
    ) + F.binary_cross_entropy(torch.sigmoid(fake), torch.zeros(9, dtype=torch.float64))
    assert discriminator_bce(real, fake).item() == pytest.approx(expected_d.item(), rel=1e-10)
    expected_g = -torch.log(torch.sigmoid(fake)).mean()
    assert generator_nonsaturating(fake).item() == pytest.approx(expected_g.item(), rel=1e-10)
    assert math.isfinite(generator_nonsaturating(torch.tensor([-1e4])).item())


def test_leading_member_dimension_is_per_member():
    x, recon, s = seeded(3, 6, 10, seed=10), seeded(3, 6, 10, seed=11), seeded(3, 6, 4, seed=12)
    margins = torch.tensor([[1.0], [5.0], [10.0]], dtype=torch.float64)
    e = energy(x, recon)
    for b in range(3):
        assert torch.allclose(e[b], energy(x[b], recon[b]))
        assert pulling_away_term(s)[b].item() == pytest.approx(pulling_away_term(s[b]).item())
        assert margin_loss(e, e.flip(-1), margins)[b].item() == pytest.approx(
            margin_loss(e[b], e[b].flip(-1), float(margins[b])).item()
        )


def test_decayed_margin_follows_appendix_e_linear_schedule():
    from ebgan_core.losses import decayed_margin

    margin = torch.tensor([[16.0], [16.0], [10.0]], dtype=torch.float64)
    decay = torch.tensor([[60.0], [0.0], [4.0]], dtype=torch.float64)
    for step in (0, 1, 30, 59, 60, 100):
        expected = [16.0 * max(0.0, 1 - step / 60), 16.0, 10.0 * max(0.0, 1 - step / 4)]
        assert decayed_margin(margin, decay, step).squeeze(-1).tolist() == pytest.approx(expected)
