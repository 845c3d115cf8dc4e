"""Stacked networks: B grid members that share layer shapes, trained as one model.

Every parameter has a leading member dimension B (a linear weight is [B, in, out], applied with
``torch.baddbmm``); batch norm keeps per-member statistics; dropout has a per-member rate and
random stream. Members never mix: member b's outputs depend only on member b's weights and inputs.
A single run is a group of one.

Architectures (Section 4.1 and Appendix C): ReLU everywhere; batch norm after every weight layer except
the generator's output layer and the discriminator's input and output layers. A linear layer that feeds
batch norm has no bias: batch norm subtracts it again, so it never changes the function, and its true
gradient is exactly zero, which Adam would turn into lr-sized steps of pure rounding noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ebgan_core.config import TrialConfig
from ebgan_core.precision import Bf16Gemm, Bf16Linear

IMAGE_DIM = 32 * 32
G_INIT_STD = 0.02
D_INIT_STD = 0.002


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
        if self.bias is None:
            return torch.bmm(x, self.weight)
        return torch.baddbmm(self.bias, x, self.weight)

    def weight_low(self) -> torch.Tensor:
        """The weight rounded for ``gemm``, re-made only after the weight changed (in-place updates bump its
        version counter: optimiser steps, initialisation, ``load_state_dict``)."""
        assert self.gemm is not None
        version = self.weight._version
        if self._weight_low is None or self._weight_low_version != version:
            self._weight_low = self.gemm.operand(self.weight.detach())
            self._weight_low_version = version
        return self._weight_low

    @torch.no_grad()
    def init_normal_(self, std: float, generators: Sequence[torch.Generator]) -> None:
        """Weights ~ N(0, std) from each member's own generator, biases 0 (the paper's init)."""
        for member, generator in enumerate(generators):
            self.weight[member].normal_(0.0, std, generator=generator)
        if self.bias is not None:
            self.bias.zero_()


class StackedBatchNorm(nn.Module):
    """Batch norm over the N samples of each member separately; the same numbers as nn.BatchNorm1d."""

    def __init__(self, members: int, features: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum, self.eps = momentum, eps
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
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * (count / (count - 1)), self.momentum)
        else:
            centered, var = x - self.running_mean, self.running_var
        return centered * (torch.rsqrt(var + self.eps) * self.weight) + self.bias


class StackedDropout(nn.Module):
    """Dropout with a rate per member (0 = off) and a random stream per member."""

    def __init__(self, rates: Sequence[float], generators: Sequence[torch.Generator]) -> None:
        super().__init__()
        self.rates = [float(r) for r in rates]
        self.generators = list(generators)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not any(self.rates):
            return x
        masks = []
        for rate, generator in zip(self.rates, self.generators, strict=True):
            if rate == 0.0:
                masks.append(torch.ones(x.shape[1:], device=x.device, dtype=x.dtype))
            else:
                keep = torch.rand(x.shape[1:], generator=generator, device=x.device, dtype=x.dtype) >= rate
                masks.append(keep.to(x.dtype) / (1.0 - rate))
        return x * torch.stack(masks)


class HiddenStack(nn.Module):
    """``depth`` layers of ``width`` units: linear -> [batch norm] -> ReLU -> [dropout]."""

    def __init__(
        self,
        members: int,
        in_features: int,
        width: int,
        depth: int,
        norm_first: bool,
        dropout: StackedDropout | None = None,
    ) -> None:
        super().__init__()
        normed = [i > 0 or norm_first for i in range(depth)]
        self.linears = nn.ModuleList(
            StackedLinear(members, in_features if i == 0 else width, width, bias=not normed[i]) for i in range(depth)
        )
        self.norms = nn.ModuleList(
            StackedBatchNorm(members, width) if normed[i] else nn.Identity() for i in range(depth)
        )
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for linear, norm in zip(self.linears, self.norms, strict=True):
            x = torch.relu(norm(linear(x)))
            if self.dropout is not None:
                x = self.dropout(x)
        return x


class Generator(nn.Module):
    """n_layer linear layers: (n_layer - 1) hidden of ``size`` with batch norm, then 1024 outputs + tanh."""

    def __init__(self, members: int, noise_dim: int, n_layer: int, size: int) -> None:
        super().__init__()
        self.hidden = HiddenStack(members, noise_dim, size, n_layer - 1, norm_first=True)
        self.output = StackedLinear(members, size, IMAGE_DIM)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """[B, N, noise_dim] -> images [B, N, 1024] in (-1, 1)."""
        return torch.tanh(self.output(self.hidden(z)))


class AutoEncoderDiscriminator(nn.Module):
    """EBGAN's D: encoder of (n_layer - 1) layers of ``size`` and a one-layer linear decoder (size -> 1024).

    No batch norm on the input layer nor on the decoder (the output layer); dropout after each encoder layer.
    """

    def __init__(self, members: int, n_layer: int, size: int, dropout: StackedDropout) -> None:
        super().__init__()
        self.encoder = HiddenStack(members, IMAGE_DIM, size, n_layer - 1, norm_first=False, dropout=dropout)
        self.decoder = StackedLinear(members, size, IMAGE_DIM)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, N, 1024] -> (reconstruction [B, N, 1024], code [B, N, size]); the code is what the decoder sees."""
        code = self.encoder(x)
        return self.decoder(code), code


class BinaryDiscriminator(nn.Module):
    """GAN's D: (n_layer - 1) hidden layers of ``size`` (no batch norm on the input layer), then one logit."""

    def __init__(self, members: int, n_layer: int, size: int, dropout: StackedDropout) -> None:
        super().__init__()
        self.hidden = HiddenStack(members, IMAGE_DIM, size, n_layer - 1, norm_first=False, dropout=dropout)
        self.output = StackedLinear(members, size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, N, 1024] -> logits [B, N]."""
        return self.output(self.hidden(x)).squeeze(-1)


class StackedGan(nn.Module):
    """Generator + discriminator of B members that share one group key."""

    def __init__(self, configs: Sequence[TrialConfig], dropout_generators: Sequence[torch.Generator]) -> None:
        super().__init__()
        first = configs[0]
        members = len(configs)
        self.family = first.family
        self.generator = Generator(members, first.noise_dim, first.n_layer_g, first.size_g)
        dropout = StackedDropout([c.dropout_rate if c.dropout_d else 0.0 for c in configs], dropout_generators)
        discriminator = AutoEncoderDiscriminator if first.family == "ebgan" else BinaryDiscriminator
        self.discriminator = discriminator(members, first.n_layer_d, first.size_d, dropout)

    def use_gemm(self, gemm: Bf16Gemm | None) -> None:
        """Run every linear layer's matmuls in bfloat16 as ``gemm`` says, or in float32 (None)."""
        for layer in self.modules():
            if isinstance(layer, StackedLinear):
                layer.gemm, layer._weight_low = gemm, None


def init_weights_(module: nn.Module, std: float, generators: Sequence[torch.Generator]) -> None:
    """The paper's init on every stacked linear layer of ``module``, in a fixed (registration) order."""
    for layer in module.modules():
        if isinstance(layer, StackedLinear):
            layer.init_normal_(std, generators)
