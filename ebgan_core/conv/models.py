"""The paper's convolutional networks (Section 4.3, Appendix C), stacked over B members (``ebgan_core.stacked_conv``).

- ``DcganGenerator``: DCGAN's generator (Radford et al. 2015), which Appendix C's is "analogous to": z as a 1x1 map, a
  4x4 transposed convolution to 8w maps, then 4c2s transposed convolutions halving the maps and doubling the size up to
  the image, batch norm and ReLU after every layer but the last, tanh at the output. 64x64 images: 8w-4w-2w-w-c
  (w = 64); each halving of the image size drops one stride-2 layer (32x32: 4w-2w-w-c).
- ``NoiseFedGenerator``: Section 4.4's deeper generator: DCGAN's, with noise planes concatenated into the input of
  every stride-2 layer (64 at 4x4, halving at each larger size: 100-64-32-16-8-4 at 128x128), one more stride-2 layer
  keeping the last width w and a 3x3 convolution to the image (128x128: (1024) 4c-(512)-(256)-(128)-(64)-(64) 4c2s-(3)
  3c). Its noise arrives in z after the noise_dim values of the 1x1 input, plane by plane (``noise_plane_values``).
- ``DcganDiscriminator``: DCGAN's discriminator, the mirror: 4c2s convolutions doubling the maps from w, leaky ReLU
  (0.2), batch norm on every layer but the first (and none with ``batch_norm`` off), then a 4x4 convolution to one
  logit per image.
- ``ConvAutoEncoderDiscriminator``: EBGAN's (Appendix C): an encoder of 4c2s convolutions (64)-(128)-(256) with leaky
  ReLU and batch norm after the first, a decoder of 4c2s transposed convolutions (128)-(64)-(c) with ReLU and batch norm
  before the last; its value is the energy ||Dec(Enc(x)) - x|| per image, its code the encoder's output (the
  pulling-away term's input). Its code is 8x8 at any image size: 3 stride-2 layers each way at 64x64, 2 at 32x32.
  ``L1ConvAutoEncoderDiscriminator``: the same, its value BEGAN's mean absolute error per pixel.

``CONV_GENERATORS`` maps a config's ``generator`` to its network, ``CONV_DISCRIMINATORS`` a family's discriminator
kind (``Family.discriminator``) to its convolutional network.

Widths scale with ``width`` (64 in the paper). Every member's outputs depend on its own weights and inputs only.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from ebgan_core.losses import energy, l1_reconstruction
from ebgan_core.stacked_conv import StackedBatchNorm2d, StackedConv2d
from ebgan_core.table1.families import Outputs

LEAK = 0.2  # DCGAN's leaky ReLU slope
MIN_IMAGE_SIZE = 16  # the auto-encoder's least: one stride-2 layer down to its 8x8 code
NOISE_PLANES = 64  # Section 4.4's noise planes into the 4x4 layer; half as many at each larger size (at least 1)


def stride2_layers(image_size: int) -> int:
    """DCGAN's stride-2 layers for an image of ``image_size`` (64 -> 4; 32 -> 3): from 4x4 up to the image."""
    layers = (image_size // 4).bit_length() - 1
    if image_size < MIN_IMAGE_SIZE or 4 * 2 ** layers != image_size:
        raise ValueError(f"image size must be 4 times a power of 2 and at least {MIN_IMAGE_SIZE} (16, 32, 64, 128), "
                         f"got {image_size}")
    return layers


class DcganGenerator(nn.Module):
    """z [B, N, noise_dim] -> images [B, N, channels, size, size] in (-1, 1)."""

    def __init__(self, members: int, noise_dim: int, image_size: int, channels: int, width: int,
                 mechanism: str = "loop") -> None:
        super().__init__()
        layers = stride2_layers(image_size)
        maps = [width * 2 ** i for i in reversed(range(layers))] + [channels]  # 8w, 4w, 2w, w, c at 64x64
        convs = [StackedConv2d(members, noise_dim, maps[0], 4, 1, 0, bias=False, transposed=True, mechanism=mechanism)]
        convs += [StackedConv2d(members, a, b, 4, 2, 1, bias=b == channels, transposed=True, mechanism=mechanism)
                  for a, b in itertools.pairwise(maps)]
        self.convs = nn.ModuleList(convs)
        self.norms = nn.ModuleList(StackedBatchNorm2d(members, m, mechanism=mechanism) for m in maps[:-1])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z.reshape(*z.shape, 1, 1)
        for conv, norm in zip(self.convs[:-1], self.norms, strict=True):
            x = torch.relu(norm(conv(x)))
        return torch.tanh(self.convs[-1](x))


def noise_planes(image_size: int) -> list[int]:
    """The noise-fed generator's noise planes into each stride-2 layer, from the 4x4 one up (64, 32, 16, ...)."""
    return [max(1, NOISE_PLANES >> i) for i in range(stride2_layers(image_size))]


def noise_plane_values(image_size: int) -> int:
    """The noise values per image in all of those planes (at 128x128: 64*4*4 + 32*8*8 + ... + 4*64*64 = 31,744)."""
    return sum(planes * (4 << i) ** 2 for i, planes in enumerate(noise_planes(image_size)))


class NoiseFedGenerator(nn.Module):
    """z [B, N, noise_dim + noise_plane_values(image_size)] -> images [B, N, channels, size, size] in (-1, 1)."""

    def __init__(self, members: int, noise_dim: int, image_size: int, channels: int, width: int,
                 mechanism: str = "loop") -> None:
        super().__init__()
        layers = stride2_layers(image_size)
        maps = [width * 2 ** i for i in reversed(range(layers))] + [width]  # 16w, 8w, 4w, 2w, w, w at 128x128
        self.noise_dim, self.planes = noise_dim, noise_planes(image_size)
        convs = [StackedConv2d(members, noise_dim, maps[0], 4, 1, 0, bias=False, transposed=True, mechanism=mechanism)]
        convs += [StackedConv2d(members, a + planes, b, 4, 2, 1, bias=False, transposed=True, mechanism=mechanism)
                  for (a, b), planes in zip(itertools.pairwise(maps), self.planes, strict=True)]
        self.convs = nn.ModuleList(convs)
        self.norms = nn.ModuleList(StackedBatchNorm2d(members, m, mechanism=mechanism) for m in maps)
        self.output = StackedConv2d(members, width, channels, 3, 1, 1, mechanism=mechanism)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        sizes = [planes * (4 << i) ** 2 for i, planes in enumerate(self.planes)]
        noise = z[..., self.noise_dim:].split(sizes, dim=-1)
        x = torch.relu(self.norms[0](self.convs[0](z[..., :self.noise_dim].reshape(*z.shape[:-1], -1, 1, 1))))
        for conv, norm, planes in zip(self.convs[1:], self.norms[1:], noise, strict=True):
            x = torch.relu(norm(conv(torch.cat([x, planes.unflatten(-1, (-1, *x.shape[-2:]))], dim=2))))
        return torch.tanh(self.output(x))


class DcganDiscriminator(nn.Module):
    """Images [B, N, channels, size, size] -> logits [B, N]."""

    def __init__(self, members: int, image_size: int, channels: int, width: int, batch_norm: bool = True,
                 mechanism: str = "loop") -> None:
        super().__init__()
        layers = stride2_layers(image_size)
        maps = [channels] + [width * 2 ** i for i in range(layers)]  # c, w, 2w, 4w, 8w at 64x64
        normed = [batch_norm and i > 0 for i in range(layers)]
        self.convs = nn.ModuleList(StackedConv2d(members, a, b, 4, 2, 1, bias=not n, mechanism=mechanism)
                                   for a, b, n in zip(maps[:-1], maps[1:], normed, strict=True))
        self.norms = nn.ModuleList(StackedBatchNorm2d(members, b, mechanism=mechanism) if n else nn.Identity()
                                   for b, n in zip(maps[1:], normed, strict=True))
        self.output = StackedConv2d(members, maps[-1], 1, 4, 1, 0, mechanism=mechanism)

    def forward(self, x: torch.Tensor) -> Outputs:
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = nn.functional.leaky_relu(norm(conv(x)), LEAK)
        return Outputs(self.output(x).flatten(2).squeeze(-1))


class ConvAutoEncoderDiscriminator(nn.Module):
    """Images [B, N, channels, size, size] -> energies [B, N] and codes [B, N, code features]."""

    reconstruction_error = staticmethod(energy)  # (x, Dec(Enc(x))) flattened -> [B, N]

    def __init__(self, members: int, image_size: int, channels: int, width: int, batch_norm: bool = True,
                 mechanism: str = "loop") -> None:
        super().__init__()
        depth = stride2_layers(image_size) - 1  # down to 8x8
        down = [channels] + [width * 2 ** i for i in range(depth)]  # c, 64, 128, 256
        up = list(reversed(down))  # 256, 128, 64, c
        self.encoder = nn.ModuleList(StackedConv2d(members, a, b, 4, 2, 1, bias=not (batch_norm and i > 0),
                                                   mechanism=mechanism)
                                     for i, (a, b) in enumerate(itertools.pairwise(down)))
        self.encoder_norms = nn.ModuleList(StackedBatchNorm2d(members, b, mechanism=mechanism)
                                           if batch_norm and i > 0 else nn.Identity()
                                           for i, b in enumerate(down[1:]))
        self.decoder = nn.ModuleList(StackedConv2d(members, a, b, 4, 2, 1, bias=not (batch_norm and b != channels),
                                                   transposed=True, mechanism=mechanism)
                                     for a, b in itertools.pairwise(up))
        self.decoder_norms = nn.ModuleList(StackedBatchNorm2d(members, b, mechanism=mechanism) if batch_norm
                                           else nn.Identity() for b in up[1:-1])

    def forward(self, x: torch.Tensor) -> Outputs:
        h = x
        for conv, norm in zip(self.encoder, self.encoder_norms, strict=True):
            h = nn.functional.leaky_relu(norm(conv(h)), LEAK)
        code = h
        for conv, norm in zip(self.decoder[:-1], self.decoder_norms, strict=True):
            h = torch.relu(norm(conv(h)))
        recon = self.decoder[-1](h)
        return Outputs(self.reconstruction_error(x.flatten(2), recon.flatten(2)), code.flatten(2))


class L1ConvAutoEncoderDiscriminator(ConvAutoEncoderDiscriminator):
    """BEGAN's D with convolutions: the auto-encoder above, its value the mean absolute error per pixel."""

    reconstruction_error = staticmethod(l1_reconstruction)


CONV_GENERATORS: dict[str, type[DcganGenerator | NoiseFedGenerator]] = {
    "dcgan": DcganGenerator, "noise-fed": NoiseFedGenerator}
CONV_DISCRIMINATORS: dict[str, type[DcganDiscriminator | ConvAutoEncoderDiscriminator]] = {
    "binary": DcganDiscriminator, "auto-encoder": ConvAutoEncoderDiscriminator,
    "auto-encoder-l1": L1ConvAutoEncoderDiscriminator}
