"""Table 1's networks, stacked over B grid members that share layer shapes (``ebgan_core.stacked``); a single run
is a group of one. A config of architecture ``conv`` gets the paper's convolutional networks instead
(``ebgan_core.conv.models``), on the same flattened images [B, N, C*H*W].

Architectures (Section 4.1 and Appendix C): ReLU everywhere; batch norm after every weight layer except
the generator's output layer and the discriminator's input and output layers (and none in the discriminator of a
config with ``batch_norm_d`` off, a setting Lucic et al. search over). A linear layer that feeds
batch norm has no bias: batch norm subtracts it again, so it never changes the function, and its true
gradient is exactly zero, which Adam would turn into lr-sized steps of pure rounding noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from ebgan_core.losses import energy, l1_reconstruction
from ebgan_core.precision import Bf16Gemm
from ebgan_core.stacked import StackedBatchNorm, StackedDropout, StackedLinear, output_tanh
from ebgan_core.table1.families import FAMILIES, Outputs

if TYPE_CHECKING:
    from ebgan_core.table1.config import TrialConfig

IMAGE_DIM = 32 * 32
G_INIT_STD = 0.02
D_INIT_STD = 0.002
CONV_INIT_STD = 0.02  # DCGAN's, for every convolution of G and D (batch norm starts at weight 1, bias 0)


class HiddenStack(nn.Module):
    """``depth`` layers of ``width`` units: linear -> [batch norm] -> ReLU -> [dropout]; batch norm (if ``norm``) on
    every layer but the first, and on the first too if ``norm_first``."""

    def __init__(
        self,
        members: int,
        in_features: int,
        width: int,
        depth: int,
        norm_first: bool,
        dropout: StackedDropout | None = None,
        norm: bool = True,
    ) -> None:
        super().__init__()
        normed = [norm and (i > 0 or norm_first) for i in range(depth)]
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
        return output_tanh(self.output(self.hidden(z)))


class AutoEncoderDiscriminator(nn.Module):
    """EBGAN's D: encoder of (n_layer - 1) layers of ``size`` and a one-layer linear decoder (size -> 1024); its value
    is the energy ||Dec(Enc(x)) - x||, its code what the decoder sees.

    No batch norm on the input layer nor on the decoder (the output layer); dropout after each encoder layer.
    """

    layers = "an encoder layer and the decoder"  # what n_layer_d >= 2 counts
    reconstruction_error = staticmethod(energy)  # (x, Dec(Enc(x))) -> [B, N]

    def __init__(self, members: int, n_layer: int, size: int, dropout: StackedDropout, batch_norm: bool = True) -> None:
        super().__init__()
        self.encoder = HiddenStack(members, IMAGE_DIM, size, n_layer - 1, norm_first=False, dropout=dropout,
                                   norm=batch_norm)
        self.decoder = StackedLinear(members, size, IMAGE_DIM)

    def forward(self, x: torch.Tensor) -> Outputs:
        """[B, N, 1024] -> energies [B, N] and codes [B, N, size]."""
        code = self.encoder(x)
        return Outputs(self.reconstruction_error(x, self.decoder(code)), code)


class L1AutoEncoderDiscriminator(AutoEncoderDiscriminator):
    """BEGAN's D on Table 1's shapes: EBGAN's auto-encoder, its value the mean absolute reconstruction error per
    pixel (BEGAN's L(v) = |v - D(v)|, averaged as compare_gan does)."""

    reconstruction_error = staticmethod(l1_reconstruction)


class BinaryDiscriminator(nn.Module):
    """GAN's D: (n_layer - 1) hidden layers of ``size`` (no batch norm on the input layer), then one unbounded output
    (a logit for the GAN)."""

    layers = "one hidden layer and the output"

    def __init__(self, members: int, n_layer: int, size: int, dropout: StackedDropout, batch_norm: bool = True) -> None:
        super().__init__()
        self.hidden = HiddenStack(members, IMAGE_DIM, size, n_layer - 1, norm_first=False, dropout=dropout,
                                  norm=batch_norm)
        self.output = StackedLinear(members, size, 1)

    def forward(self, x: torch.Tensor) -> Outputs:
        """[B, N, 1024] -> outputs [B, N]."""
        return Outputs(self.output(self.hidden(x)).squeeze(-1))


DISCRIMINATORS: dict[str, type[AutoEncoderDiscriminator | BinaryDiscriminator]] = {
    "auto-encoder": AutoEncoderDiscriminator, "auto-encoder-l1": L1AutoEncoderDiscriminator,
    "binary": BinaryDiscriminator}


class FlatImageGenerator(nn.Module):
    """A convolutional generator giving flattened images: z [B, N, noise_dim] -> [B, N, C*H*W]."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.network(z).flatten(2)


class FlatImageDiscriminator(nn.Module):
    """A convolutional discriminator on flattened images [B, N, C*H*W] of ``channels`` x ``size`` x ``size``."""

    def __init__(self, network: nn.Module, channels: int, size: int) -> None:
        super().__init__()
        self.network, self.image_shape = network, (channels, size, size)

    def forward(self, x: torch.Tensor) -> Outputs:
        return self.network(x.unflatten(-1, self.image_shape))


class StackedGan(nn.Module):
    """Generator + discriminator of B members that share one group key; ``init_stds``: the standard deviations of
    their initial weights (G's, D's)."""

    def __init__(self, configs: Sequence[TrialConfig], dropout_generators: Sequence[torch.Generator]) -> None:
        super().__init__()
        first = configs[0]
        members = len(configs)
        self.family = first.family
        kind = FAMILIES[first.family].discriminator
        if first.architecture == "conv":
            from ebgan_core.conv.models import CONV_DISCRIMINATORS, CONV_GENERATORS

            size, channels = first.image_size, first.channels
            self.generator = FlatImageGenerator(
                CONV_GENERATORS[first.generator](members, first.noise_dim, size, channels, first.width))
            self.discriminator = FlatImageDiscriminator(
                CONV_DISCRIMINATORS[kind](members, size, channels, first.width, first.batch_norm_d), channels, size)
            self.init_stds = (CONV_INIT_STD, CONV_INIT_STD)
            return
        self.generator = Generator(members, first.noise_dim, first.n_layer_g, first.size_g)
        dropout = StackedDropout([c.dropout_rate if c.dropout_d else 0.0 for c in configs], dropout_generators)
        self.discriminator = DISCRIMINATORS[kind](members, first.n_layer_d, first.size_d, dropout, first.batch_norm_d)
        self.init_stds = (G_INIT_STD, D_INIT_STD)

    def use_gemm(self, gemm: Bf16Gemm | None) -> None:
        """Run every linear layer's matmuls in bfloat16 as ``gemm`` says, or in float32 (None)."""
        for layer in self.modules():
            if isinstance(layer, StackedLinear):
                layer.gemm, layer._weight_low = gemm, None
