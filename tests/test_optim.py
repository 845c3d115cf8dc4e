"""StackedOptimizer against torch.optim.Adam / torch.optim.SGD run on each member alone."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ebgan_core.optim import StackedOptimizer

KINDS = ("adam", "sgd", "adam", "sgd")
LRS = (1e-2, 5e-2, 3e-3, 1e-1)
BETAS, MOMENTUM = (0.5, 0.999), 0.9


def member_loss(weight: torch.Tensor, bias: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """A smooth non-quadratic loss (curvature at most 3, so every lr here is stable)."""
    return ((weight - target) ** 2).sum() + torch.cos(weight).sum() + torch.sin(bias).sum()


def stacked_and_reference(momentum: float):
    generator = torch.Generator().manual_seed(0)
    weight = nn.Parameter(torch.randn(len(KINDS), 3, 5, generator=generator, dtype=torch.float64))
    bias = nn.Parameter(torch.randn(len(KINDS), 1, 5, generator=generator, dtype=torch.float64))
    targets = torch.randn(len(KINDS), 3, 5, generator=generator, dtype=torch.float64)
    stacked = StackedOptimizer([weight, bias], KINDS, LRS, BETAS, momentum)
    reference = []
    for member, (kind, lr) in enumerate(zip(KINDS, LRS, strict=True)):
        params = [nn.Parameter(weight[member].detach().clone()), nn.Parameter(bias[member].detach().clone())]
        optimizer = (torch.optim.Adam(params, lr=lr, betas=BETAS) if kind == "adam"
                     else torch.optim.SGD(params, lr=lr, momentum=momentum))
        reference.append((params, optimizer))
    return weight, bias, targets, stacked, reference


@pytest.mark.parametrize("momentum", [0.0, MOMENTUM])
def test_every_member_follows_its_own_torch_optimizer(momentum):
    weight, bias, targets, stacked, reference = stacked_and_reference(momentum)
    active = torch.ones(len(KINDS), dtype=torch.bool)
    for _ in range(15):
        stacked.zero_grad()
        sum(member_loss(weight[m], bias[m], targets[m]) for m in range(len(KINDS))).backward()
        stacked.step(active)
        for member, (params, optimizer) in enumerate(reference):
            optimizer.zero_grad()
            member_loss(*params, targets[member]).backward()
            optimizer.step()
    for member, ((ref_weight, ref_bias), _) in enumerate(reference):
        torch.testing.assert_close(weight[member], ref_weight, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(bias[member], ref_bias, rtol=1e-12, atol=1e-12)
    assert not torch.equal(weight[0], weight[2])  # members really moved apart


def test_an_inactive_member_is_frozen_even_with_nan_gradients():
    weight, bias, targets, stacked, _ = stacked_and_reference(MOMENTUM)
    active = torch.ones(len(KINDS), dtype=torch.bool)
    frozen_at = {}
    for step in range(8):
        if step == 3:
            active[1] = active[2] = False  # one SGD and one Adam member diverge
            frozen_at = {m: (weight[m].detach().clone(), bias[m].detach().clone()) for m in (1, 2)}
        stacked.zero_grad()
        sum(member_loss(weight[m], bias[m], targets[m]) for m in range(len(KINDS))).backward()
        if step >= 3:
            weight.grad[1:3] = float("nan")
        before = weight[0].detach().clone()
        stacked.step(active)
        assert not torch.equal(weight[0], before)  # the active members go on
    for member, (frozen_weight, frozen_bias) in frozen_at.items():
        assert torch.equal(weight[member], frozen_weight) and torch.equal(bias[member], frozen_bias)
    assert torch.isfinite(weight).all() and torch.isfinite(bias).all()


def test_bad_arguments_are_refused():
    weight = nn.Parameter(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="unknown optimiser 'rmsprop'"):
        StackedOptimizer([weight], ["adam", "rmsprop"], [1e-3, 1e-3], BETAS, 0.0)
    with pytest.raises(ValueError, match="one kind and one lr per member"):
        StackedOptimizer([weight], ["adam"], [1e-3], BETAS, 0.0)
    optimizer = StackedOptimizer([weight], ["adam", "sgd"], [1e-3, 1e-3], BETAS, 0.0)
    with pytest.raises(RuntimeError, match="has no gradient"):
        optimizer.step(torch.ones(2, dtype=torch.bool))
