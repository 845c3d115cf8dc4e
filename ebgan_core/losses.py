"""The paper's losses. Every function accepts optional leading member dimensions [..., N, ...].

Per-sample first, then the mean over the N samples of a batch (Section 2.1, eq. 14). The bugs of
public implementations that these avoid are tested in tests/test_losses.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ebgan_core.pointwise import softplus
from ebgan_core.stacked import stacked_matmul

NORM_FLOOR = 1e-12  # a zero code vector has cosine 0 with every other one


class _RowNorm(torch.autograd.Function):
    """The L2 norm over the last dimension, with ``torch.linalg.vector_norm``'s forward and, bit for bit, its
    gradient, ``grad * (v / norm)`` and 0 where the norm is 0. Torch zeroes those with a full-size broadcast
    ``masked_fill_`` (slower than the division itself: 3-4% of a laptop-width EBGAN step); this divides by infinity
    where the norm is 0, a mask of [..., N, 1], for the same zeros."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, v: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm(v, ord=2, dim=-1)
        ctx.save_for_backward(v, norm)
        return norm

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        v, norm = ctx.saved_tensors
        norm = norm.unsqueeze(-1)
        return torch.div(v, norm.masked_fill(norm == 0, torch.inf)).mul_(grad.unsqueeze(-1))


def energy(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """D(x) = ||Dec(Enc(x)) - x||_2 per sample: [..., N, D] -> [..., N]."""
    return _RowNorm.apply(recon - x)


def margin_loss(e_real: torch.Tensor, e_fake: torch.Tensor, margin: float | torch.Tensor) -> torch.Tensor:
    """L_D = mean over samples of D(x) + [m - D(G(z))]^+ : [..., N] -> [...].

    ``margin`` is a number or a tensor broadcastable to [..., 1] (one margin per member).
    """
    return (e_real + F.relu(margin - e_fake)).mean(dim=-1)


def decayed_margin(margin: torch.Tensor, decay_steps: torch.Tensor, step: int | torch.Tensor) -> torch.Tensor:
    """Appendix E's schedule: m_t = m * max(0, 1 - t / decay_steps); a decay of 0 keeps m fixed (per member). ``step``
    is a number or a 0-dim integer tensor (the same numbers)."""
    fraction = torch.where(decay_steps > 0, 1 - step / decay_steps.clamp_min(1), torch.ones_like(margin))
    return margin * fraction.clamp_min(0)


def pulling_away_term(s: torch.Tensor) -> torch.Tensor:
    """Eq. 14: 1/(N(N-1)) sum_{i != j} cos(S_i, S_j)^2 on encoder outputs s [..., N, d] -> [...]."""
    count = s.shape[-2]
    if count < 2:
        raise ValueError(f"the pulling-away term needs at least 2 samples, got {count}")
    unit = s / torch.linalg.vector_norm(s, dim=-1, keepdim=True).clamp_min(NORM_FLOOR)
    cosine = stacked_matmul(unit, unit.transpose(-1, -2)) if unit.dim() == 3 else unit @ unit.transpose(-1, -2)
    off_diagonal = cosine.square().sum(dim=(-1, -2)) - torch.diagonal(cosine, dim1=-2, dim2=-1).square().sum(dim=-1)
    return off_diagonal / (count * (count - 1))


def discriminator_bce(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """GAN discriminator loss: mean BCE(real -> 1) + mean BCE(fake -> 0): [..., N] -> [...]."""
    return softplus(-logits_real).mean(dim=-1) + softplus(logits_fake).mean(dim=-1)


def generator_nonsaturating(logits_fake: torch.Tensor) -> torch.Tensor:
    """GAN generator loss, non-saturating: mean -log sigmoid(D(G(z))): [..., N] -> [...]."""
    return softplus(-logits_fake).mean(dim=-1)


# --- The losses of Lucic et al.'s study ("Are GANs Created Equal?"), as google/compare_gan computes them -------------

def generator_minimax(logits_fake: torch.Tensor) -> torch.Tensor:
    """The minimax (MM-GAN) generator loss mean log(1 - sigmoid(D(G(z)))) = -mean softplus(D(G(z))): [..., N] ->
    [...]."""
    return -softplus(logits_fake).mean(dim=-1)


def least_squares_discriminator(p_real: torch.Tensor, p_fake: torch.Tensor) -> torch.Tensor:
    """LSGAN's L_D = 0.5 (mean (D(x) - 1)^2 + mean D(G(z))^2) on D's outputs in [0, 1] (sigmoids, as compare_gan)."""
    return 0.5 * ((p_real - 1).square().mean(dim=-1) + p_fake.square().mean(dim=-1))


def least_squares_generator(p_fake: torch.Tensor) -> torch.Tensor:
    """LSGAN's L_G = 0.5 mean (D(G(z)) - 1)^2 on D's outputs in [0, 1]."""
    return 0.5 * (p_fake - 1).square().mean(dim=-1)


def wasserstein_discriminator(critic_real: torch.Tensor, critic_fake: torch.Tensor) -> torch.Tensor:
    """WGAN's critic loss mean D(G(z)) - mean D(x): [..., N] -> [...]."""
    return critic_fake.mean(dim=-1) - critic_real.mean(dim=-1)


def wasserstein_generator(critic_fake: torch.Tensor) -> torch.Tensor:
    """WGAN's (and the hinge loss's) generator loss -mean D(G(z))."""
    return -critic_fake.mean(dim=-1)


def hinge_discriminator(critic_real: torch.Tensor, critic_fake: torch.Tensor) -> torch.Tensor:
    """The hinge loss mean [1 - D(x)]^+ + mean [1 + D(G(z))]^+."""
    return F.relu(1 - critic_real).mean(dim=-1) + F.relu(1 + critic_fake).mean(dim=-1)


SLOPE_EPS = 1e-4  # under the square root of the gradient norm, as compare_gan (no NaN gradient at a zero gradient)


def gradient_penalty(critic: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """mean over samples of (||grad_x D(x)||_2 - 1)^2 at ``points`` [..., N, D] (which ``critic`` [..., N] was
    computed from, point by point), the gradient's norm taken as sqrt(1e-4 + sum g^2): [...]. Differentiable (the
    gradient is taken with ``create_graph``)."""
    (gradients,) = torch.autograd.grad(critic.sum(), points, create_graph=True)
    slopes = (gradients.square().sum(dim=-1) + SLOPE_EPS).sqrt()
    return (slopes - 1).square().mean(dim=-1)


def l1_reconstruction(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """BEGAN's auto-encoder loss per sample: mean |Dec(Enc(x)) - x| over the pixels: [..., N, D] -> [..., N]."""
    return (recon - x).abs().mean(dim=-1)


def began_k_update(k: torch.Tensor, loss_real: torch.Tensor, loss_fake: torch.Tensor, gamma: torch.Tensor,
                   lambda_k: torch.Tensor) -> torch.Tensor:
    """BEGAN's control of the equilibrium: k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1)."""
    return (k + lambda_k * (gamma * loss_real - loss_fake)).clamp(0, 1)
