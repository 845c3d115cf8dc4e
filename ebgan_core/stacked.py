"""Layers of B stacked members that share shapes: the building blocks of every study's models.

Every parameter has a leading member dimension B (a linear weight is [B, in, out], applied with ``torch.baddbmm``);
batch norm keeps per-member statistics; dropout has a per-member rate and random stream. Members never mix: member
b's outputs depend only on member b's weights and inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ebgan_core import pointwise
from ebgan_core.precision import Bf16Gemm, Bf16Linear


def _as_batch_of_two(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``bias + a @ b`` of one member ([1, N, K] @ [1, K, M]) computed as a batch of two copies, one discarded."""
    a, b = a.expand(2, -1, -1), b.expand(2, -1, -1)
    product = torch.bmm(a, b) if bias is None else torch.baddbmm(bias.expand(2, -1, -1), a, b)
    return product[:1]


class _OneColumnProduct(torch.autograd.Function):
    """``stacked_matmul`` of a single member with one output column, forward and backward through MKL's batched
    GEMM: autograd's formulas for ``baddbmm`` (grad_a = grad @ b^T, grad_b = a^T @ grad, grad_bias = grad summed
    over N)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, a: torch.Tensor, b: torch.Tensor,
                bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(a, b)
        return _as_batch_of_two(a, b, bias)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
                 ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        a, b = ctx.saved_tensors
        needs_a, needs_b, needs_bias = ctx.needs_input_grad
        return (_as_batch_of_two(grad, b.transpose(1, 2), None) if needs_a else None,
                _as_batch_of_two(a.transpose(1, 2), grad, None) if needs_b else None,
                grad.sum(1, keepdim=True) if needs_bias else None)


def stacked_matmul(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``bias + a @ b`` for B stacked members ([B, N, K] @ [B, K, M], bias [B, 1, M]), each member's product the
    same numbers in a group of any size, alone included.

    PyTorch hands a batch of several products to MKL's batched GEMM, which computes each on one thread the same way
    whatever the batch size and thread count (in MKL's strict mode, ``ebgan_core.determinism``), and a batch of one
    to its single GEMM. On one thread that computes the same numbers (the group runner trains a group of one with
    MKL on one thread), except for a product with one output column, which it hands to a matrix-vector kernel that
    sums otherwise: on a CPU such a product of a single member runs, forward and backward, as a batch of two copies.
    """
    if a.shape[0] == 1 and b.shape[-1] == 1 and a.device.type == "cpu":
        return _OneColumnProduct.apply(a, b, bias)
    return torch.bmm(a, b) if bias is None else torch.baddbmm(bias, a, b)


class StackedLinear(nn.Module):
    """B independent linear layers: [B, N, in] -> [B, N, out]; float32 GEMMs, or bfloat16 ones when ``gemm`` is set."""

    def __init__(self, members: int, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(members, 1, out_features)) if bias else None
        self.gemm: Bf16Gemm | None = None
        self._weight_low: torch.Tensor | None = None  # the bfloat16 copy, made once per weight update
        self._weight_low_version = -1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gemm is not None:
            return Bf16Linear.apply(x, self.weight, self.bias, self.weight_low(), self.gemm)
        return stacked_matmul(x, self.weight, self.bias)

    def weight_low(self) -> torch.Tensor:
        """The weight rounded for ``gemm``, re-made only after the weight changed (in-place updates bump its
        version counter: optimiser steps, initialisation, ``load_state_dict``)."""
        assert self.gemm is not None
        version = self.weight._version
        if self._weight_low is None or self._weight_low_version != version:
            self._weight_low = self.gemm.operand(self.weight.detach())
            self._weight_low_version = version
        return self._weight_low

    def init_normal_(self, std: float, generators: Sequence[torch.Generator]) -> None:
        """Weights ~ N(0, std) from each member's own generator, biases 0 (the paper's init)."""
        init_members_normal_(self.weight, self.bias, std, generators)


class StackedBatchNorm(nn.Module):
    """Batch norm over the N samples of each member separately; the same numbers as nn.BatchNorm1d.

    ``running_updates``: how many times a training batch's statistics enter the running ones (1, as nn.BatchNorm1d;
    a step that runs the layer once where its reference runs it twice on the same batch sets 2).
    """

    def __init__(self, members: int, features: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.running_updates = 1
        self.weight = nn.Parameter(torch.ones(members, 1, features))
        self.bias = nn.Parameter(torch.zeros(members, 1, features))
        self.register_buffer("running_mean", torch.zeros(members, 1, features))
        self.register_buffer("running_var", torch.ones(members, 1, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            # The mean of squared deviations, not torch.var_mean: on [B, N, F] over dim 1 the latter ran 11-20x
            # slower on CPU (a strided reduction), the largest elementwise cost of a step.
            mean = x.mean(dim=1, keepdim=True)
            centered = x - mean
            var = centered.square().mean(dim=1, keepdim=True)
            with torch.no_grad():
                count = x.shape[1]
                unbiased_var = var * (count / (count - 1))
                for _ in range(self.running_updates):
                    self.running_mean.lerp_(mean, self.momentum)
                    self.running_var.lerp_(unbiased_var, self.momentum)
        else:
            centered, var = x - self.running_mean, self.running_var
        return centered * (torch.rsqrt(var + self.eps) * self.weight) + self.bias


class StackedDropout(nn.Module):
    """Dropout with a rate per member (0 = off) and a random stream per member."""

    def __init__(self, rates: Sequence[float], generators: Sequence[torch.Generator]) -> None:
        super().__init__()
        self.rates = [float(r) for r in rates]
        self.generators = list(generators)
        # On the module's device from the start (not copied from the host at every forward: on CUDA a pageable copy
        # and a host sync each time); in float64, which rounds to each dtype the module is cast to as torch.tensor
        # of the Python floats would. Not saved with the module: the configs give the rates.
        self.register_buffer("rate", torch.tensor(self.rates, dtype=torch.float64), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not any(self.rates):
            return x
        # Each member's uniform draws from its own stream (the numbers torch.rand would draw), then one comparison
        # and one scaling for all members; a member without dropout draws nothing and keeps everything.
        draws = torch.ones_like(x)
        for member, (rate, generator) in enumerate(zip(self.rates, self.generators, strict=True)):
            if rate:
                draws[member].uniform_(generator=generator)
        rates = self.rate.to(x.dtype).view(-1, *([1] * (x.dim() - 1)))
        return x * (draws >= rates).to(x.dtype).div_(1.0 - rates)


@torch.no_grad()
def init_members_normal_(weight: torch.Tensor, bias: torch.Tensor | None, std: float,
                         generators: Sequence[torch.Generator]) -> None:
    """A stacked layer's weights [B, ...] ~ N(0, std), member b's from ``generators[b]``; its biases 0."""
    for member, generator in enumerate(generators):
        weight[member].normal_(0.0, std, generator=generator)
    if bias is not None:
        bias.zero_()


def init_weights_(module: nn.Module, std: float, generators: Sequence[torch.Generator]) -> None:
    """The paper's init on every stacked weight layer of ``module`` (linear or convolutional: those with an
    ``init_normal_``), in a fixed (registration) order."""
    for layer in module.modules():
        if hasattr(layer, "init_normal_"):
            layer.init_normal_(std, generators)


def output_tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh for a generator's output pixels: ``torch.tanh`` on CUDA; on a CPU ``pointwise.tanh``, from exp (PyTorch's
    CPU tanh was a fifth of a laptop-width step; its sigmoid, faster still, rounds a member's elements by where they
    sit in the group's tensor)."""
    if x.device.type == "cuda":
        return torch.tanh(x)
    return pointwise.tanh(x)
