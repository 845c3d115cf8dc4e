"""bf16 GEMMs: the layer against independent computations (native, emulated, autocast), the once-per-update weight
copy, float32 master state, and group parity in bf16."""

from __future__ import annotations

import pytest
import torch

from ebgan_core.optim import StackedOptimizer
from ebgan_core.precision import Bf16Gemm, Bf16Linear
from ebgan_core.table1.train import build_group, train_group
from tests.test_train import FLOAT32_RTOL, TINY, assert_same_member

BF16_ULP = 2.0**-7  # relative spacing of bfloat16 numbers (8 significant bits)


def rounded(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.bfloat16).to(torch.float32)


def layer_inputs(seed: int = 0, members: int = 3, n: int = 16, fan_in: int = 200, fan_out: int = 48):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(members, n, fan_in, generator=generator, requires_grad=True)
    w = torch.randn(members, fan_in, fan_out, generator=generator, requires_grad=True)
    b = torch.randn(members, 1, fan_out, generator=generator, requires_grad=True)
    grad_y = torch.randn(members, n, fan_out, generator=generator)
    return x, w, b, grad_y


def bf16_layer(native: bool, x, w, b, grad_y):
    gemm = Bf16Gemm(native)
    y = Bf16Linear.apply(x, w, b, gemm.operand(w.detach()), gemm)
    return (y, *torch.autograd.grad(y, (x, w, b), grad_y))


def test_emulated_bf16_layer_equals_the_rounding_written_out():
    x, w, b, grad_y = layer_inputs()
    y, grad_x, grad_w, grad_b = bf16_layer(False, x, w, b, grad_y)
    xr, wr, gr = rounded(x.detach()), rounded(w.detach()), rounded(grad_y)
    torch.testing.assert_close(y, rounded(xr @ wr) + b.detach(), rtol=0, atol=0)
    torch.testing.assert_close(grad_x, rounded(gr @ wr.transpose(1, 2)), rtol=0, atol=0)
    torch.testing.assert_close(grad_w, rounded(xr.transpose(1, 2) @ gr), rtol=0, atol=0)
    torch.testing.assert_close(grad_b, grad_y.sum(dim=1, keepdim=True))
    assert all(t.dtype == torch.float32 for t in (y, grad_x, grad_w, grad_b))
    # It really is coarser than float32: the same layer in float32 differs by far more than float32 rounding.
    assert (y - (x.detach() @ w.detach() + b.detach())).abs().max() > 1e-3


def test_native_bf16_layer_equals_autocast_and_the_emulation_to_one_bf16_step():
    x, w, b, grad_y = layer_inputs(seed=1)
    native = bf16_layer(True, x, w, b, grad_y)
    emulated = bf16_layer(False, x, w, b, grad_y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reference = torch.bmm(x.detach(), w.detach())
    assert reference.dtype == torch.bfloat16
    torch.testing.assert_close(native[0], reference.float() + b.detach(), rtol=0, atol=0)
    # Native and emulated differ only in the float32 GEMM's summation order: at most one bf16 step apart.
    for ours, theirs in zip(native, emulated, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=BF16_ULP, atol=BF16_ULP * theirs.abs().max().item())


def test_weight_copy_is_made_once_per_update_and_master_state_stays_float32():
    model, _ = build_group([TINY.replace(precision="bf16")])
    layer = model.generator.output
    first = layer.weight_low()
    assert layer.weight_low() is first and layer.weight.dtype == torch.float32
    torch.testing.assert_close(first.float(), rounded(layer.weight.detach()), rtol=0, atol=0)
    optimizer = StackedOptimizer(model.generator.parameters(), ["adam"], [1e-2], (0.5, 0.999), 0.0)
    for p in model.generator.parameters():
        p.grad = torch.randn_like(p)
    optimizer.step(torch.ones(1, dtype=torch.bool))
    updated = layer.weight_low()
    assert updated is not first and not torch.equal(updated, first)
    torch.testing.assert_close(updated.float(), rounded(layer.weight.detach()), rtol=0, atol=0)
    assert all(t.dtype == torch.float32 for tensors in optimizer.state.values() for t in tensors)


def test_bf16_refuses_float64_master_weights():
    with pytest.raises(ValueError, match="bf16 keeps float32 master weights"):
        build_group([TINY.replace(precision="bf16")], dtype=torch.float64)


@pytest.fixture(scope="module")
def real_subset(mnist_train) -> torch.Tensor:
    return mnist_train[0][:4096]


@pytest.mark.slow
def test_bf16_member_in_a_group_matches_it_alone_and_differs_from_fp32(real_subset, judge):
    configs = [TINY.replace(precision="bf16", lr=lr, seed=s, pt_weight=pt)
               for s, (lr, pt) in enumerate(((1e-4, 0.0), (1e-3, 0.1), (2e-4, 0.0), (1e-4, 0.1)))]
    grouped = train_group(configs, real_subset, judge, keep_state=True)
    (alone,) = train_group([configs[3]], real_subset, judge, keep_state=True)
    assert_same_member(grouped[3], alone, rtol=FLOAT32_RTOL)
    (fp32,) = train_group([configs[3].replace(precision="fp32")], real_subset, judge, keep_state=True)
    weight = "output.weight"
    difference = (fp32.state["generator"][weight] - alone.state["generator"][weight]).abs().max()
    assert difference > 1e-6  # bf16 rounding really changed the run
