"""What one Table 2 member costs: matmul FLOPs of its run, and memory while it trains and is tested (for splitting a
group into waves).

The parameter count comes from the real networks built on PyTorch's ``meta`` device (no memory, no arithmetic), so
it can never disagree with ``ebgan_core.table2.ladder``.
"""

from __future__ import annotations

import functools
import itertools

import torch

from ebgan_core.table2.config import LadderConfig
from ebgan_core.table2.ladder import PIXELS, NoiseFedGenerator, StackedLadder

# Live activations per encoder or decoder unit and sample while a step trains: the pre-activation, its normalised
# and corrupted forms, the ReLU, the decoder's estimate and combinator terms, and their gradients. An upper bound.
ACTIVATION_COPIES = 12
EVAL_COPIES = 3  # per unit and image while testing: pre-activation, normalised value, ReLU
PREDICT_CHUNK = 2000  # test images encoded at once (``StackedLadder.predict``)
ALLOCATOR_SLACK = 1.25  # freed blocks the allocator keeps, as for Table 1 (``ebgan_core.table1.footprint``)


@functools.lru_cache(maxsize=256)
def _parameters(widths: tuple[int, ...], generator_widths: tuple[int, ...] | None, noise_dim: int) -> int:
    with torch.device("meta"):
        networks = [StackedLadder(1, widths)]
        if generator_widths is not None:
            networks.append(NoiseFedGenerator(1, noise_dim, generator_widths))
    return sum(t.numel() for network in networks for t in (*network.parameters(), *network.buffers()))


def member_bytes(config: LadderConfig, dtype: torch.dtype = torch.float32) -> int:
    """Peak bytes one member needs (an upper estimate): parameters with their gradients and Adam moments, the
    activations of a step (labelled, unlabelled and for EBGAN-LN generated batches), or those of testing (batch-norm
    statistics over ``bn_samples`` images, then the test images in chunks), whichever is larger."""
    parameters = _parameters(config.encoder_widths(), config.generator_widths() if config.adversarial else None,
                             config.noise_dim)
    units = PIXELS + 2 * sum(config.encoder_widths())  # encoder and decoder, the input layer's reconstruction
    batches = 4 if config.adversarial else 2  # labelled, unlabelled (+ generated, seen by the ladder twice)
    training = ACTIVATION_COPIES * config.batch_size * batches * units
    testing = EVAL_COPIES * max(config.bn_samples, PREDICT_CHUNK) * units
    return int(ALLOCATOR_SLACK * dtype.itemsize * (4 * parameters + max(training, testing)))


def _matmul_macs(dims: tuple[int, ...]) -> int:
    return sum(a * b for a, b in itertools.pairwise(dims))


def flops_per_run(config: LadderConfig) -> float:
    """Matmul FLOPs of one member's whole run, forward and backward (backward = 2x forward): each step's corrupted
    passes of a labelled batch (encoder) and an unlabelled one (encoder and decoder); while EBGAN-LN's generator
    trains, the generated batch through encoder and decoder in both updates and the generator itself."""
    encoder = 2 * _matmul_macs((PIXELS, *config.encoder_widths(), 10))  # per sample; the decoder mirrors it
    step = 3 * config.batch_size * (3 * encoder)
    generator_steps = min(config.margin_decay_steps, config.steps) if config.adversarial else 0
    widths = config.generator_widths()
    generator = 2 * _matmul_macs((config.noise_dim, widths[0])) + 2 * sum(
        (a + config.noise_dim) * b for a, b in zip(widths, (*widths[1:], PIXELS), strict=True))
    adversarial = 3 * config.batch_size * (2 * 2 * encoder + generator)
    return config.steps * step + generator_steps * adversarial


def flops_per_score(config: LadderConfig) -> float:
    """Matmul FLOPs of one test-error measurement: batch-norm statistics over ``bn_samples`` training images and the
    10,000 test images, through the clean encoder."""
    return 2 * _matmul_macs((PIXELS, *config.encoder_widths(), 10)) * (config.bn_samples + 10_000)
