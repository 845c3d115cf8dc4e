"""Convolutional layers of B stacked members that share shapes: activations [B, N, C, H, W], every parameter with a
leading member dimension, members never mixed.

Two mechanisms, the same numbers to rounding (``tests/test_stacked_conv.py``), chosen by measurement
(``benchmarks/conv_stacking.py``):
- ``loop``: each member's layer on its own slice, one ``F.conv2d`` / ``F.conv_transpose2d`` / ``F.batch_norm`` call per
  member. A member computes exactly what ``torch.nn.Conv2d`` etc. compute for it alone, bit for bit, in a group of
  any size (the same call on the same shapes).
- ``grouped``: one grouped convolution for the whole group (the members' channels side by side, ``groups=B``; HFTA's
  mechanism), and batch norm over B x C channels; two layout copies per layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ebgan_core.stacked import init_members_normal_

MECHANISMS = ("loop", "grouped")


def _check_mechanism(mechanism: str) -> None:
    if mechanism not in MECHANISMS:
        raise ValueError(f"unknown stacking mechanism {mechanism!r}; use one of {', '.join(MECHANISMS)}")


def side_by_side(x: torch.Tensor) -> torch.Tensor:
    """[B, N, C, H, W] -> [N, B*C, H, W]: the members' channels side by side (a copy)."""
    members, count, channels, height, width = x.shape
    return x.transpose(0, 1).reshape(count, members * channels, height, width)


def stacked_again(y: torch.Tensor, members: int) -> torch.Tensor:
    """[N, B*C, H, W] -> [B, N, C, H, W] (a view)."""
    count, channels, height, width = y.shape
    return y.view(count, members, channels // members, height, width).transpose(0, 1)


class StackedConv2d(nn.Module):
    """B independent ``nn.Conv2d`` (or, ``transposed``, ``nn.ConvTranspose2d``) layers: [B, N, Cin, H, W] ->
    [B, N, Cout, H', W']. Weights [B, Cout, Cin, k, k] ([B, Cin, Cout, k, k] transposed, as torch's), biases
    [B, Cout]."""

    def __init__(self, members: int, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True, transposed: bool = False, mechanism: str = "loop") -> None:
        super().__init__()
        _check_mechanism(mechanism)
        channels = (in_channels, out_channels) if transposed else (out_channels, in_channels)
        self.weight = nn.Parameter(torch.empty(members, *channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(members, out_channels)) if bias else None
        self.stride, self.padding, self.transposed, self.mechanism = stride, padding, transposed, mechanism

    def _convolve(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, groups: int) -> torch.Tensor:
        if self.transposed:
            return F.conv_transpose2d(x, weight, bias, stride=self.stride, padding=self.padding, groups=groups)
        return F.conv2d(x, weight, bias, stride=self.stride, padding=self.padding, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        members = self.weight.shape[0]
        if self.mechanism == "grouped":
            bias = None if self.bias is None else self.bias.flatten()
            return stacked_again(self._convolve(side_by_side(x), self.weight.flatten(0, 1), bias, members), members)
        return torch.stack([self._convolve(x[m], self.weight[m], None if self.bias is None else self.bias[m], 1)
                            for m in range(members)])

    def init_normal_(self, std: float, generators: Sequence[torch.Generator]) -> None:
        """Weights ~ N(0, std) from each member's own generator (DCGAN's init), biases 0."""
        init_members_normal_(self.weight, self.bias, std, generators)


class StackedBatchNorm2d(nn.Module):
    """B independent ``nn.BatchNorm2d`` layers over [B, N, C, H, W]: statistics per member and channel, over N, H, W.

    ``running_updates``: how many times a training batch's statistics enter the running ones (1, as nn.BatchNorm2d;
    2 for a step that runs the layer once where its reference runs it twice on the same batch: one update with
    momentum 1 - (1 - momentum)^2, the same to rounding).
    """

    def __init__(self, members: int, channels: int, momentum: float = 0.1, eps: float = 1e-5,
                 mechanism: str = "loop") -> None:
        super().__init__()
        _check_mechanism(mechanism)
        self.momentum, self.eps, self.mechanism = momentum, eps, mechanism
        self.running_updates = 1
        self.weight = nn.Parameter(torch.ones(members, channels))
        self.bias = nn.Parameter(torch.zeros(members, channels))
        self.register_buffer("running_mean", torch.zeros(members, channels))
        self.register_buffer("running_var", torch.ones(members, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        momentum = self.momentum if self.running_updates == 1 else 1 - (1 - self.momentum) ** self.running_updates
        if self.mechanism == "grouped":  # the flattened buffers are views: F.batch_norm updates them in place
            return stacked_again(F.batch_norm(side_by_side(x), self.running_mean.view(-1), self.running_var.view(-1),
                                              self.weight.flatten(), self.bias.flatten(), self.training,
                                              momentum, self.eps), x.shape[0])
        return torch.stack([F.batch_norm(x[m], self.running_mean[m], self.running_var[m], self.weight[m], self.bias[m],
                                         self.training, momentum, self.eps) for m in range(x.shape[0])])
