"""What one Table 1 member costs: its layer shapes, matmul (or convolution) FLOPs per step and memory while training.

The shapes come from the real model built on PyTorch's ``meta`` device (no memory, no arithmetic), so
they can never disagree with ``ebgan_core.table1.models``; a convolutional member's FLOPs and activations from one
sample through it there (``torch.utils.flop_counter``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from ebgan_core.stacked import StackedLinear
from ebgan_core.stacked_conv import StackedConv2d
from ebgan_core.table1.config import TrialConfig
from ebgan_core.table1.models import StackedGan

# Live activations per linear layer output while a step trains: the layer output, batch-norm and ReLU
# intermediates saved for backward, their gradients, for real, fake and G(z) batches. An upper bound.
ACTIVATION_COPIES = 8
SCORE_CHUNK = 1000  # samples generated at once when a member is scored
# Peak resident memory exceeds the live tensors: glibc keeps freed blocks below its mmap threshold (up to
# 32 MiB) in its heap, where they fragment. Measured per extra member (tests/test_footprint.py): up to
# 1.06x the live-tensor estimate; 1.25 leaves room.
ALLOCATOR_SLACK = 1.25


@dataclass(frozen=True)
class Footprint:
    """One member's linear layers ((in, out) pairs; none for a convolutional member), FLOPs and activations of one
    sample through each network, and tensor sizes in elements."""

    generator_layers: tuple[tuple[int, int], ...]
    discriminator_layers: tuple[tuple[int, int], ...]
    generator_flops: int  # a forward pass of one sample
    discriminator_flops: int
    activations: int  # elements of every weight layer's output for one sample through G and D
    generator_parameters: int
    discriminator_parameters: int
    generator_elements: int  # parameters and buffers (batch-norm running statistics)
    discriminator_elements: int


def footprint(config: TrialConfig) -> Footprint:
    """Layer shapes and element counts of one member of ``config``, from the model on the meta device."""
    return _architecture_footprint(TrialConfig(
        family=config.family, noise_dim=config.noise_dim, n_layer_g=config.n_layer_g, size_g=config.size_g,
        n_layer_d=config.n_layer_d, size_d=config.size_d, architecture=config.architecture,
        image_size=config.image_size, width=config.width, channels=config.channels, generator=config.generator,
        dataset="mnist" if config.channels == 1 else config.dataset))


@functools.lru_cache(maxsize=1024)
def _architecture_footprint(architecture: TrialConfig) -> Footprint:
    """``footprint`` of a config that differs from the defaults only in its architecture (cached: a grid has
    thousands of configs but a few hundred architectures)."""
    with torch.device("meta"):
        model = StackedGan([architecture], [None])

    def layers(module: torch.nn.Module) -> tuple[tuple[int, int], ...]:
        return tuple((m.weight.shape[1], m.weight.shape[2]) for m in module.modules() if isinstance(m, StackedLinear))

    def parameters(module: torch.nn.Module) -> int:
        return sum(t.numel() for t in module.parameters())

    def elements(module: torch.nn.Module) -> int:  # what its state dict holds: not dropout's per-member rates
        return sum(t.numel() for t in module.state_dict().values())

    g, d = model.generator, model.discriminator
    if architecture.architecture == "conv":
        g_flops, d_flops, activations = _one_sample_through(model, architecture.noise_inputs())
    else:
        g_layers, d_layers = layers(g), layers(d)
        g_flops, d_flops = (2 * sum(i * o for i, o in shapes) for shapes in (g_layers, d_layers))
        activations = sum(o for _, o in g_layers + d_layers)
    return Footprint(layers(g), layers(d), g_flops, d_flops, activations, parameters(g), parameters(d), elements(g),
                     elements(d))


def _one_sample_through(model: StackedGan, noise_inputs: int) -> tuple[int, int, int]:
    """(G's, D's forward FLOPs, every convolution's output elements) of one sample, on the meta
    device."""
    outputs: list[int] = []
    hooks = [m.register_forward_hook(lambda module, inputs, output: outputs.append(output[0, 0].numel()))
             for m in model.modules() if isinstance(m, StackedConv2d)]
    try:
        with torch.device("meta"):
            with FlopCounterMode(display=False) as counter:
                image = model.generator(torch.empty(1, 1, noise_inputs))
            g_flops = counter.get_total_flops()
            with FlopCounterMode(display=False) as counter:
                model.discriminator(image)
            d_flops = counter.get_total_flops()
    finally:
        for hook in hooks:
            hook.remove()
    return g_flops, d_flops, sum(outputs)


def flops_per_step(config: TrialConfig) -> float:
    """Matmul (or convolution) FLOPs of one training step of one member: 4 G forwards + 8 D forwards with one
    discriminator update (k updates: k (1 + 6) + 3 + 2); a gradient penalty's extra passes are left out.

    Each D update: G forward (no grad), D forward on real and fake, D backward (2x forward) on both.
    G update: G forward, D forward, D backward to its input only (1x), G backward (2x).
    """
    shapes = footprint(config)
    g_forward = config.batch_size * shapes.generator_flops
    d_forward = config.batch_size * shapes.discriminator_flops
    return config.disc_iters * (g_forward + 6 * d_forward) + 3 * g_forward + 2 * d_forward


def _state_copies(optimizer: str, sgd_momentum: float) -> int:
    """Optimiser state tensors per parameter: Adam's two moments, SGD's momentum buffer (if any)."""
    return 2 if optimizer == "adam" else int(bool(sgd_momentum))


def optimizer_bytes_per_step(config: TrialConfig, dtype: torch.dtype = torch.float32) -> int:
    """Memory traffic of one member's fused optimiser steps (G and D): each element's parameter and
    gradient are read, the parameter written, and each state tensor read and written once."""
    shapes = footprint(config)
    return dtype.itemsize * (shapes.generator_parameters * (3 + 2 * _state_copies(config.optim_g, config.sgd_momentum))
                       + shapes.discriminator_parameters * (3 + 2 * _state_copies(config.optim_d, config.sgd_momentum)))


def member_bytes(config: TrialConfig, dtype: torch.dtype = torch.float32) -> int:
    """Peak bytes one member needs while it trains and is scored (an upper estimate).

    Parameters and buffers, their gradients, the optimiser state, activations for a step, and the
    generated samples held for scoring (float32 images, chunks and their concatenation), times
    ``ALLOCATOR_SLACK``.
    """
    shapes = footprint(config)
    weights = (shapes.generator_elements * (2 + _state_copies(config.optim_g, config.sgd_momentum))
               + shapes.discriminator_elements * (2 + _state_copies(config.optim_d, config.sgd_momentum)))
    pixels = config.channels * config.image_side() ** 2
    activations = ACTIVATION_COPIES * config.batch_size * (shapes.activations + pixels)
    scoring = 2 * min(SCORE_CHUNK, config.score_samples) * shapes.activations
    samples = 2 * 4 * config.score_samples * pixels
    return int(ALLOCATOR_SLACK * (dtype.itemsize * (weights + max(activations, scoring)) + samples))
