"""StackedOptimizer, in each of its update mechanisms, against torch.optim.Adam / torch.optim.SGD run on each member
alone, against float64, with frozen (diverged) members, resumed state and the state layout saved before it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ebgan_core.optim import StackedOptimizer

KINDS = ("adam", "sgd", "adam", "sgd")
LRS = (1e-2, 5e-2, 3e-3, 1e-1)
BETAS, MOMENTUM = (0.5, 0.999), 0.9
UPDATES = ("fused", "compiled", "eager")


def member_loss(weight: torch.Tensor, bias: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """A smooth non-quadratic loss (curvature at most 3, so every lr here is stable)."""
    return ((weight - target) ** 2).sum() + torch.cos(weight).sum() + torch.sin(bias).sum()


def stacked_and_reference(momentum: float, update: str = "fused", dtype: torch.dtype = torch.float64,
                          kinds=KINDS, lrs=LRS):
    generator = torch.Generator().manual_seed(0)
    weight = nn.Parameter(torch.randn(len(kinds), 3, 5, generator=generator, dtype=torch.float64).to(dtype))
    bias = nn.Parameter(torch.randn(len(kinds), 1, 5, generator=generator, dtype=torch.float64).to(dtype))
    targets = torch.randn(len(kinds), 3, 5, generator=generator, dtype=torch.float64).to(dtype)
    stacked = StackedOptimizer([weight, bias], kinds, lrs, BETAS, momentum, update=update)
    reference = []
    for member, (kind, lr) in enumerate(zip(kinds, lrs, strict=True)):
        params = [nn.Parameter(weight[member].detach().clone()), nn.Parameter(bias[member].detach().clone())]
        optimizer = (torch.optim.Adam(params, lr=lr, betas=BETAS) if kind == "adam"
                     else torch.optim.SGD(params, lr=lr, momentum=momentum))
        reference.append((params, optimizer))
    return weight, bias, targets, stacked, reference


def stacked_steps(weight, bias, targets, stacked, steps: int) -> None:
    active = torch.ones(weight.shape[0], dtype=torch.bool)
    for _ in range(steps):
        stacked.zero_grad()
        sum(member_loss(weight[m], bias[m], targets[m]) for m in range(weight.shape[0])).backward()
        stacked.step(active)


def reference_steps(reference, targets, steps: int) -> None:
    for member, (params, optimizer) in enumerate(reference):
        for _ in range(steps):
            optimizer.zero_grad()
            member_loss(*params, targets[member]).backward()
            optimizer.step()


@pytest.mark.parametrize("update", UPDATES)
@pytest.mark.parametrize("momentum", [0.0, MOMENTUM])
def test_every_member_follows_its_own_torch_optimizer(momentum, update):
    weight, bias, targets, stacked, reference = stacked_and_reference(momentum, update)
    stacked_steps(weight, bias, targets, stacked, 15)
    reference_steps(reference, targets, 15)
    assert stacked.update == update  # no silent fallback here
    for member, ((ref_weight, ref_bias), _) in enumerate(reference):
        torch.testing.assert_close(weight[member], ref_weight, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(bias[member], ref_bias, rtol=1e-12, atol=1e-12)
    assert not torch.equal(weight[0], weight[2])  # members really moved apart


@pytest.mark.parametrize("update", UPDATES)
def test_float32_stays_within_float32_rounding_of_torch_and_of_float64(update):
    weight, bias, targets, stacked, reference = stacked_and_reference(MOMENTUM, update, torch.float32)
    stacked_steps(weight, bias, targets, stacked, 15)
    reference_steps(reference, targets, 15)
    exact_weight, exact_bias, exact_targets, exact, _ = stacked_and_reference(MOMENTUM, "eager", torch.float64)
    stacked_steps(exact_weight, exact_bias, exact_targets, exact, 15)
    for member, ((ref_weight, _), _) in enumerate(reference):
        torch.testing.assert_close(weight[member], ref_weight, rtol=2e-6, atol=2e-6)
        torch.testing.assert_close(weight[member].double(), exact_weight[member], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("update", UPDATES)
@pytest.mark.parametrize("frozen", [(1, 2), (0, 3)])  # stopped members between the others, and at both ends
def test_an_inactive_member_is_frozen_even_with_nan_gradients(update, frozen):
    weight, bias, targets, stacked, reference = stacked_and_reference(MOMENTUM, update)
    frozen, going = list(frozen), [m for m in range(len(KINDS)) if m not in frozen]
    active = torch.ones(len(KINDS), dtype=torch.bool)
    frozen_at = {}
    for step in range(8):
        if step == 3:
            active[frozen] = False  # one SGD and one Adam member diverge
            frozen_at = {m: (weight[m].detach().clone(), bias[m].detach().clone()) for m in frozen}
            state = {name: [t[frozen].clone() for t in tensors] for name, tensors in stacked.state.items()}
        stacked.zero_grad()
        sum(member_loss(weight[m], bias[m], targets[m]) for m in range(len(KINDS))).backward()
        if step >= 3:
            weight.grad[frozen] = float("nan")
        before = weight[going[0]].detach().clone()
        stacked.step(active)
        assert not torch.equal(weight[going[0]], before)  # the active members go on
    for member, (frozen_weight, frozen_bias) in frozen_at.items():
        assert torch.equal(weight[member], frozen_weight) and torch.equal(bias[member], frozen_bias)
    for name, tensors in stacked.state.items():  # their moments and momentum too, bit for bit
        assert all(torch.equal(t[frozen], saved) for t, saved in zip(tensors, state[name], strict=True)), name
    reference_steps([reference[m] for m in going], targets[going], 8)  # the others, as if no member had stopped
    for (ref_weight, ref_bias), member in zip((params for params, _ in (reference[m] for m in going)), going,
                                              strict=True):
        torch.testing.assert_close(weight[member], ref_weight, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(bias[member], ref_bias, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("update", UPDATES)
def test_a_resumed_optimizer_continues_exactly(update):
    weight, bias, targets, stacked, _ = stacked_and_reference(MOMENTUM, update)
    stacked_steps(weight, bias, targets, stacked, 6)
    saved, at = stacked.state_dict(), (weight.detach().clone(), bias.detach().clone())
    stacked_steps(weight, bias, targets, stacked, 5)
    resumed_weight, resumed_bias = nn.Parameter(at[0].clone()), nn.Parameter(at[1].clone())
    resumed = StackedOptimizer([resumed_weight, resumed_bias], KINDS, LRS, BETAS, MOMENTUM, update=update)
    resumed.load_state_dict(saved)
    stacked_steps(resumed_weight, resumed_bias, targets, resumed, 5)
    assert torch.equal(resumed_weight, weight) and torch.equal(resumed_bias, bias)


def test_the_per_member_state_layout_saved_before_stacked_updates_still_loads():
    weight, bias, targets, stacked, _ = stacked_and_reference(0.0)
    stacked_steps(weight, bias, targets, stacked, 4)
    current = stacked.state_dict()
    # The layout of today's version-2 group checkpoints: per member, its kind's state as per-parameter slices (an
    # SGD member without momentum kept an empty buffer list).
    legacy = {"steps": current["steps"], "kinds": current["kinds"], "states": [
        {"exp_avg": [t[m] for t in current["state"]["exp_avg"]],
         "exp_avg_sq": [t[m] for t in current["state"]["exp_avg_sq"]]} if kind == "adam" else {"momentum_buffer": []}
        for m, kind in enumerate(KINDS)]}
    for layout in (current, legacy):
        copy = StackedOptimizer([nn.Parameter(weight.detach().clone()), nn.Parameter(bias.detach().clone())], KINDS,
                                LRS, BETAS, 0.0)
        copy.load_state_dict(layout)
        assert copy.steps == 4
        for name, tensors in stacked.state.items():
            for mine, theirs in zip(copy.state[name], tensors, strict=True):
                adam = torch.tensor([k == "adam" for k in KINDS])
                assert torch.equal(mine[adam], theirs[adam]), name


@pytest.mark.parametrize("update", UPDATES)
def test_learning_rates_may_change_between_steps(update):
    weight, bias, targets, stacked, reference = stacked_and_reference(0.0, update)
    for lrs in (LRS, tuple(lr / 2 for lr in LRS)):
        stacked.lrs = list(lrs)
        for (_, optimizer), lr in zip(reference, lrs, strict=True):
            optimizer.param_groups[0]["lr"] = lr
        stacked_steps(weight, bias, targets, stacked, 3)
        reference_steps(reference, targets, 3)
    for member, ((ref_weight, _), _) in enumerate(reference):
        torch.testing.assert_close(weight[member], ref_weight, rtol=1e-12, atol=1e-12)


def test_one_call_per_run_whole_vectors_whole_and_other_tensors_member_by_member(monkeypatch):
    kinds, lrs = ("adam",) * 6 + ("sgd",) * 2, (1e-3,) * 6 + (1e-2,) * 2
    weight = nn.Parameter(torch.randn(len(kinds), 4, 4, dtype=torch.float64))  # 128 bytes a member: whole vectors
    bias = nn.Parameter(torch.randn(len(kinds), 1, 5, dtype=torch.float64))  # 40 bytes a member
    stacked = StackedOptimizer([weight, bias], kinds, lrs, BETAS, 0.0, update="fused")
    calls = []
    for name in ("_fused_adam_", "_fused_sgd_"):
        kernel = getattr(torch, name)

        def counted(*args, _kernel=kernel, _name=name, **kwargs):
            calls.append((_name, [tuple(t.shape) for t in args[0]]))
            return _kernel(*args, **kwargs)

        monkeypatch.setattr(torch, name, counted)
    stacked.zero_grad()
    (weight.sin().sum() + bias.cos().sum()).backward()
    stacked.step(torch.ones(len(kinds), dtype=torch.bool))
    # One call per run: the run's slice of the weight, and the bias one member at a time.
    assert calls == [("_fused_adam_", [(6, 4, 4), *[(1, 5)] * 6]), ("_fused_sgd_", [(2, 4, 4), *[(1, 5)] * 2])]


def test_bad_arguments_are_refused():
    weight = nn.Parameter(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="unknown optimiser 'rmsprop'"):
        StackedOptimizer([weight], ["adam", "rmsprop"], [1e-3, 1e-3], BETAS, 0.0)
    with pytest.raises(ValueError, match="one kind and one lr per member"):
        StackedOptimizer([weight], ["adam"], [1e-3], BETAS, 0.0)
    with pytest.raises(ValueError, match="unknown update 'magic'"):
        StackedOptimizer([weight], ["adam", "sgd"], [1e-3, 1e-3], BETAS, 0.0, update="magic")
    optimizer = StackedOptimizer([weight], ["adam", "sgd"], [1e-3, 1e-3], BETAS, 0.0)
    with pytest.raises(RuntimeError, match="has no gradient"):
        optimizer.step(torch.ones(2, dtype=torch.bool))


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_a_member_alone_and_first_of_a_group_update_bit_for_bit(kind):
    """PyTorch's fused kernels update a tensor's last (numel mod vector width) elements in a scalar loop that rounds
    apart from the vector body (Adam where eps is not negligible beside sqrt(v), as for a ladder's gradients of a few
    1e-3, on a Zen 3; SGD with momentum on AVX-512 CPUs). Alone, a member's last elements are that tail; first of
    three in one stacked tensor they would be in the body. The optimiser passes such a tensor member by member."""
    generator = torch.Generator().manual_seed(3)
    shape = (3, 1, 79)  # 79 elements a member: 7 beyond a multiple of 8, 15 beyond one of 16
    start = torch.randn(shape, generator=generator) * 3e-3
    gradients = [torch.randn(shape, generator=generator) * 3e-3 for _ in range(6)]

    def trained(members: int) -> torch.Tensor:
        weight = nn.Parameter(start[:members].clone())
        optimizer = StackedOptimizer([weight], [kind] * members, [2e-3] * members, BETAS, MOMENTUM, update="fused")
        for gradient in gradients:
            weight.grad = gradient[:members].clone()
            optimizer.step(torch.ones(members, dtype=torch.bool))
        return weight.detach()[0]

    assert torch.equal(trained(1), trained(3))
