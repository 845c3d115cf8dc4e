"""One hashed configuration of the semi-supervised study (Section 4.2, Appendix D): a ladder network (LN), its EBGAN
extension (EBGAN-LN) or the supervised MLP beside them, on permutation-invariant MNIST.

Defaults are the paper's best baseline; docs/settings.md lists the choices made where the
paper is silent (noise level, combinator, generator, batch mix, batch-norm population statistics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ebgan_core.hashed_config import HashedConfig, fail
from ebgan_core.table2.families import LADDER_FAMILIES

ENCODER_WIDTHS = (1000, 500, 250, 250, 250)  # then the 10 classes (Appendix D)
GENERATOR_WIDTHS = (500, 1000)  # not stated by the paper
LABEL_COUNTS = (100, 200, 1000)
LADDER_HASH_SCHEMA = 1


@dataclass(frozen=True)
class LadderConfig(HashedConfig):
    """Every setting of one semi-supervised run.

    ``recon_weight`` multiplies the per-pixel mean squared reconstruction error, so 1000 is the paper's
    lambda = 1000/784 on the error summed over the 784 pixels (as in Rasmus et al.'s code).
    ``mlp`` is the same encoder trained on the labels alone: no reconstruction cost, no noise.
    """

    family: str = "ln"  # a registered family (ebgan_core.table2.families)
    labels: int = 100  # labelled training images, balanced over the 10 classes and drawn by the seed
    recon_weight: float = 1000.0
    lr: float = 0.0002  # the ladder's (EBGAN-LN: the discriminator's)
    lr_g: float = 0.00025  # EBGAN-LN's generator
    steps: int = 120_000  # ladder updates in all
    decay_start: int = 80_000  # both learning rates fall linearly to 0 from this step to the last
    margin: float = 16.0  # EBGAN-LN: m on the ladder's energy (its weighted reconstruction cost)
    margin_decay_steps: int = 60_000  # EBGAN-LN: m falls linearly to 0 by this step; the generator stops there
    width_divisor: int = 1  # every hidden width is divided by this (1 = the paper's)
    batch_size: int = 100  # labelled images per step; as many unlabelled ones beside them (Rasmus et al.)
    noise_std: float = 0.3  # Gaussian corruption of every encoder layer, the input included (Rasmus et al.)
    noise_dim: int = 100  # EBGAN-LN: noise fed into each generator layer
    adam_beta1: float = 0.5
    adam_beta2: float = 0.999
    seed: int = 0
    data_seed: int = 0  # order of the unlabelled batches
    bn_samples: int = 10_000  # training images behind the batch-norm statistics used at test time

    def _validate(self) -> None:
        try:
            family = LADDER_FAMILIES[self.family]
        except ValueError as exc:
            fail(str(exc))
        if self.labels < 10 or self.labels % 10 or self.labels > 60_000:
            fail(f"labels must be a multiple of 10 between 10 and 60000 (balanced classes), got {self.labels}")
        for name in ("lr", "lr_g"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                fail(f"{name} must be a positive finite number, got {value}")
        if not (math.isfinite(self.recon_weight) and self.recon_weight >= 0):
            fail(f"recon_weight must be >= 0, got {self.recon_weight}")
        if family.check is not None:
            family.check(self)
        if self.steps < 1 or not 0 <= self.decay_start <= self.steps:
            fail(f"need steps >= 1 and 0 <= decay_start <= steps, got steps {self.steps}, decay_start "
                 f"{self.decay_start}")
        if not (math.isfinite(self.margin) and self.margin >= 0):
            fail(f"margin must be >= 0, got {self.margin}")
        if self.adversarial and not 0 <= self.margin_decay_steps <= self.steps:
            fail(f"margin_decay_steps must be in [0, steps], got {self.margin_decay_steps}")
        for name in ("width_divisor", "noise_dim", "bn_samples"):
            if getattr(self, name) < 1:
                fail(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            fail(f"batch_size must be >= 2 (batch norm needs pairs), got {self.batch_size}")
        if not (math.isfinite(self.noise_std) and self.noise_std >= 0):
            fail(f"noise_std must be >= 0, got {self.noise_std}")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0 <= getattr(self, name) < 1:
                fail(f"{name} must be in [0, 1), got {getattr(self, name)}")

    @property
    def adversarial(self) -> bool:
        """A generator trains against the ladder (EBGAN-LN); its settings apply."""
        return LADDER_FAMILIES[self.family].adversarial

    def encoder_widths(self) -> tuple[int, ...]:
        """Hidden widths of the ladder's encoder at this config's width divisor."""
        return tuple(max(1, w // self.width_divisor) for w in ENCODER_WIDTHS)

    def generator_widths(self) -> tuple[int, ...]:
        """Hidden widths of EBGAN-LN's generator at this config's width divisor."""
        return tuple(max(1, w // self.width_divisor) for w in GENERATOR_WIDTHS)

    def canonical(self) -> dict[str, Any]:
        """The fields that change the result, except the seed; settings a family does not use are left out."""
        values = self.to_dict()
        del values["seed"]
        if not self.adversarial:
            for name in ("lr_g", "margin", "margin_decay_steps", "noise_dim"):
                del values[name]
        values["hash_schema"] = LADDER_HASH_SCHEMA
        values["study"] = "table2"
        return values

    def group_key(self) -> tuple:
        """What members of one stacked group share: a generator or none, shapes, schedule lengths, batch and data
        order. LN and MLP members train together; members may differ in labels, recon_weight, lr, lr_g, margin,
        noise_std and seed.
        """
        return (self.adversarial, self.width_divisor, self.steps, self.decay_start, self.margin_decay_steps,
                self.batch_size, self.noise_dim, self.adam_beta1, self.adam_beta2, self.data_seed, self.bn_samples)

    def short_name(self) -> str:
        """A readable one-line label, e.g. ``ln 100 labels lambda=1000/784 lr=0.0002``."""
        parts = [self.family, f"{self.labels} labels"]
        if LADDER_FAMILIES[self.family].reconstructs:
            parts.append(f"lambda={self.recon_weight:g}/784")
        parts.append(f"lr={self.lr:g}")
        if self.adversarial:
            parts += [f"lr_g={self.lr_g:g}", f"m={self.margin:g}->0/{self.margin_decay_steps}"]
        if self.width_divisor != 1:
            parts.append(f"widths/{self.width_divisor}")
        return " ".join(parts)
